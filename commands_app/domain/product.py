"""The Product aggregate: catalogue entry and its available stock.

Its state is the same size however many orders it has seen: it keeps no ledger of
open reservations. An order knows what it reserved (its lines) and gives it back
once, when it is cancelled (`decisions.cancel_order`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from uuid import UUID

from .aggregate import Aggregate
from .errors import InsufficientStockError, InvalidStateError
from .events import (
    Event,
    ProductRegistered,
    ProductRestocked,
    StockReleased,
    StockReserved,
)


def product_stream(product_id: UUID) -> str:
    return Product.stream_for(product_id)


@dataclass(kw_only=True)
class Product(Aggregate[UUID]):
    STREAM_TYPE = "product"

    sku: str = ""
    name: str = ""
    price_cents: int = 0
    available: int = 0
    # The version of the latest stored snapshot (see `snapshot`).
    snapshot_version: int = field(default=0, compare=False, repr=False)

    # The format of `snapshot()`; bump it when the state's shape changes.
    # 1 also held `reserved_for` (every open reservation); 2 does not.
    SNAPSHOT_SCHEMA: ClassVar[int] = 2

    @classmethod
    def register(
        cls,
        *,
        product_id: UUID,
        sku: str,
        name: str,
        price_cents: int,
        initial_stock: int,
    ) -> Product:
        product = cls(id=product_id)
        product.record(
            ProductRegistered(
                product_id=product_id,
                sku=sku,
                name=name,
                price_cents=price_cents,
                initial_stock=initial_stock,
            )
        )
        return product

    @classmethod
    def from_snapshot(
        cls,
        product_id: UUID,
        version: int,
        state: dict[str, Any],
        events: Iterable[Event],
    ) -> Product:
        """Rebuild a product from its state at `version` and the events after it."""
        product = cls(
            id=product_id,
            sku=state["sku"],
            name=state["name"],
            price_cents=state["price_cents"],
            available=state["available"],
            version=version,
            snapshot_version=version,
        )
        product.fold(events)
        return product

    def snapshot(self) -> dict[str, Any]:
        """Return the state after the pending events, as JSON-ready data."""
        return {
            "sku": self.sku,
            "name": self.name,
            "price_cents": self.price_cents,
            "available": self.available,
        }

    def restock(self, quantity: int) -> None:
        self._check_positive(quantity)
        self.record(ProductRestocked(product_id=self.id, quantity=quantity))

    def reserve(self, *, order_id: UUID, quantity: int) -> None:
        self._check_positive(quantity)
        if quantity > self.available:
            raise InsufficientStockError(
                f"Only {self.available} of {self.sku} in stock, {quantity} requested.",
                product_id=str(self.id),
                available=self.available,
                requested=quantity,
            )
        self.record(
            StockReserved(product_id=self.id, order_id=order_id, quantity=quantity)
        )

    def release(self, *, order_id: UUID, quantity: int) -> None:
        """Give back `quantity` that an order reserved.

        The product does not check what the order reserved: the order does, and
        releases its own reservations exactly once (`Order.reservations`).
        """
        self._check_positive(quantity)
        self.record(
            StockReleased(product_id=self.id, order_id=order_id, quantity=quantity)
        )

    def apply(self, event: Event) -> None:
        match event:
            case ProductRegistered():
                self.sku = event.sku
                self.name = event.name
                self.price_cents = event.price_cents
                self.available = event.initial_stock
            case ProductRestocked():
                self.available += event.quantity
            case StockReserved():
                self.available -= event.quantity
            case StockReleased():
                self.available += event.quantity

    @staticmethod
    def _check_positive(quantity: int) -> None:
        if quantity <= 0:
            raise InvalidStateError("Quantity must be positive.", quantity=quantity)
