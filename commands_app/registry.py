"""The command registry: each command's name, input, policy and aggregate."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any
from uuid import UUID

from rest_framework import serializers

from . import serializers as inputs


class Who(Enum):
    """Who may send a command; ownership of an order is checked separately."""

    STAFF = "staff"
    CUSTOMER = "customer"
    ORDER_OWNER = "order owner"
    ORDER_OWNER_OR_STAFF = "order owner or staff"


@dataclass(frozen=True)
class CommandSpec:
    name: str
    input: type[serializers.Serializer]
    who: Who
    summary: str
    refusals: tuple[str, ...]
    creates: str | None = None  # the body field holding a client-chosen new id
    refers_to: str | None = None  # the body field naming an existing aggregate
    queue: str = "commands"

    def aggregate_field(self) -> str | None:
        return self.creates or self.refers_to


COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec(
            name="register-product",
            input=inputs.RegisterProductInput,
            who=Who.STAFF,
            summary="Register a product with its opening stock (staff).",
            refusals=("duplicate_sku", "duplicate_id"),
            creates="product_id",
        ),
        CommandSpec(
            name="restock-product",
            input=inputs.RestockProductInput,
            who=Who.STAFF,
            summary="Add stock to a product (staff).",
            refusals=("product_not_found",),
            refers_to="product_id",
        ),
        CommandSpec(
            name="import-products",
            input=inputs.ImportProductsInput,
            who=Who.STAFF,
            summary=(
                "Import up to 50,000 products (staff). Long-running: reports "
                "`progress` 0 to 100 and resumes after a crash; `result` counts "
                "`imported` and `skipped` (SKUs already registered)."
            ),
            refusals=(),
            queue="imports",
        ),
        CommandSpec(
            name="place-order",
            input=inputs.PlaceOrderInput,
            who=Who.CUSTOMER,
            summary="Place an order, reserving stock on every line at once.",
            refusals=("product_not_found", "insufficient_stock", "duplicate_id"),
            creates="order_id",
        ),
        CommandSpec(
            name="pay-order",
            input=inputs.PayOrderInput,
            who=Who.ORDER_OWNER,
            summary=(
                "Pay a placed order by card (the order's customer). The card "
                "number is tokenised before anything is stored. The payment is "
                "requested first and charged afterwards: the command stays "
                "running until the gateway's answer is recorded."
            ),
            refusals=(
                "order_not_found",
                "invalid_state",
                "payment_in_progress",
                "payment_declined",
            ),
            refers_to="order_id",
        ),
        CommandSpec(
            name="cancel-order",
            input=inputs.CancelOrderInput,
            who=Who.ORDER_OWNER_OR_STAFF,
            summary=(
                "Cancel an order and release its stock; refused once shipped or "
                "while a payment runs. A paid order is refunded afterwards."
            ),
            refusals=("order_not_found", "invalid_state", "payment_in_progress"),
            refers_to="order_id",
        ),
        CommandSpec(
            name="ship-order",
            input=inputs.ShipOrderInput,
            who=Who.STAFF,
            summary="Ship a paid order (staff).",
            refusals=("order_not_found", "invalid_state"),
            refers_to="order_id",
        ),
        CommandSpec(
            name="forget-customer",
            input=inputs.ForgetCustomerInput,
            who=Who.STAFF,
            summary=(
                "Erase a customer's personal data by crypto-shredding (staff): "
                "their data key is destroyed, so the personal fields of their "
                "events read as `[erased]`; their command bodies, read models "
                "and user record are erased too. Events stay; cannot be undone. "
                "Forgetting a forgotten customer succeeds again and changes nothing."
            ),
            refusals=("customer_not_found",),
        ),
        CommandSpec(
            name="update-order",
            input=inputs.UpdateOrderInput,
            who=Who.ORDER_OWNER_OR_STAFF,
            summary=(
                "Change an order: replace its `lines` until it is paid (stock is "
                "reserved and released by the difference) and its "
                "`shipping_address` until it ships. `result.changed` lists what "
                "changed (empty when the order already was so)."
            ),
            refusals=(
                "order_not_found",
                "invalid_state",
                "payment_in_progress",
                "product_not_found",
                "insufficient_stock",
            ),
            refers_to="order_id",
        ),
    )
}


def to_json(data: Any) -> Any:
    """Make validated data JSON-ready (UUIDs as strings)."""
    if isinstance(data, dict):
        return {key: to_json(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [to_json(value) for value in data]
    if isinstance(data, UUID):
        return str(data)
    return data
