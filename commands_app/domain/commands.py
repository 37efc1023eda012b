"""Commands: imperative requests, validated in shape before they reach a handler."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from .events import Address


@dataclass(frozen=True, kw_only=True)
class RegisterProduct:
    """Register a new product in the catalogue with its opening stock."""

    product_id: UUID
    sku: str
    name: str
    price_cents: int
    initial_stock: int


@dataclass(frozen=True, kw_only=True)
class RestockProduct:
    """Add stock to an existing product."""

    product_id: UUID
    quantity: int


@dataclass(frozen=True, kw_only=True)
class RequestedLine:
    product_id: UUID
    quantity: int


@dataclass(frozen=True, kw_only=True)
class PlaceOrder:
    """Place an order for the signed-in customer, reserving stock on every line."""

    order_id: UUID
    customer_id: int
    lines: tuple[RequestedLine, ...]
    shipping_address: Address


@dataclass(frozen=True, kw_only=True)
class PayOrder:
    """Ask to pay an order: the card is charged afterwards, as an effect."""

    order_id: UUID
    payment_id: UUID
    paid_by: int
    card_last4: str


@dataclass(frozen=True, kw_only=True)
class CancelOrder:
    """Cancel an order that has not shipped, releasing its stock."""

    order_id: UUID
    reason: str
    cancelled_by: int


@dataclass(frozen=True, kw_only=True)
class ShipOrder:
    """Ship a paid order."""

    order_id: UUID
    tracking_number: str


@dataclass(frozen=True, kw_only=True)
class UpdateOrder:
    """Change an order: its lines until it is paid, its address until it ships.

    A field left as None is not changed; `lines` replaces all of the order's lines.
    """

    order_id: UUID
    changed_by: int
    lines: tuple[RequestedLine, ...] | None = None
    shipping_address: Address | None = None


@dataclass(frozen=True, kw_only=True)
class ImportedProduct:
    sku: str
    name: str
    price_cents: int
    initial_stock: int


@dataclass(frozen=True, kw_only=True)
class ImportProducts:
    """Register many products, skipping SKUs already registered (long-running).

    Run in chunks by `commands_app.imports`, which reads the stored payload.
    """

    products: tuple[ImportedProduct, ...]
