"""The command registry: one `CommandSpec` per command, the single description.

A spec names the command's input serializer, typed command class, the function
building that command from the stored JSON payload, its handler, queue, who may
send it and any behaviour of its own (`long_running`, `progress_pushes`). The
endpoints (`api.py`, `urls.py`), the OpenAPI schema and the command table of
docs/api.md (checked by tests/commands_app/test_registry.py) follow from it;
execution, acceptance and pushes ask the spec rather than compare names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar
from uuid import UUID

from rest_framework import serializers

from . import handlers
from . import serializers as inputs
from .domain.commands import (
    CancelOrder,
    ImportProducts,
    PayOrder,
    PlaceOrder,
    RegisterProduct,
    RestockProduct,
    ShipOrder,
    UpdateOrder,
)
from .domain.customer import ForgetCustomer
from .handlers import Context, Outcome
from .models import CommandRecord

C = TypeVar("C")


class Who(Enum):
    """Who may send a command; ownership of an order is checked separately."""

    STAFF = "staff"
    CUSTOMER = "customer"
    ORDER_OWNER = "order owner"
    ORDER_OWNER_OR_STAFF = "order owner or staff"


@dataclass(frozen=True, kw_only=True)
class CommandSpec(Generic[C]):
    name: str
    input: type[serializers.Serializer]
    command: type[C]  # the typed command its handler takes
    build: Callable[[dict[str, Any], Context], C]  # stored payload -> command
    # None only for a long-running command, run by its own runner.
    handler: Callable[[C, Context], Outcome] | None
    who: Who
    summary: str
    refusals: tuple[str, ...]
    creates: str | None = None  # the body field holding a client-chosen new id
    refers_to: str | None = None  # the body field naming an existing aggregate
    queue: str = "commands"
    # Run in chunks by `imports.run_import` on the `imports` queue, resumable.
    long_running: bool = False
    # Every status change is also pushed to all staff sockets (`push.py`).
    progress_pushes: bool = False

    def aggregate_field(self) -> str | None:
        return self.creates or self.refers_to

    def command_from(self, payload: dict[str, Any], context: Context) -> C:
        """The typed command from the validated JSON payload stored with it."""
        return self.build(payload, context)

    def run(self, payload: dict[str, Any], context: Context) -> Outcome:
        """Decide the command: build the typed command, call its handler."""
        assert self.handler is not None, f"{self.name} has its own runner"
        return self.handler(self.command_from(payload, context), context)


REGISTER_PRODUCT: CommandSpec[RegisterProduct] = CommandSpec(
    name="register-product",
    input=inputs.RegisterProductInput,
    command=RegisterProduct,
    build=handlers.register_product_command,
    handler=handlers.register_product,
    who=Who.STAFF,
    summary="Register a product with its opening stock (staff).",
    refusals=("duplicate_sku", "duplicate_id"),
    creates="product_id",
)

RESTOCK_PRODUCT: CommandSpec[RestockProduct] = CommandSpec(
    name="restock-product",
    input=inputs.RestockProductInput,
    command=RestockProduct,
    build=handlers.restock_product_command,
    handler=handlers.restock_product,
    who=Who.STAFF,
    summary="Add stock to a product (staff).",
    refusals=("product_not_found",),
    refers_to="product_id",
)

IMPORT_PRODUCTS: CommandSpec[ImportProducts] = CommandSpec(
    name="import-products",
    input=inputs.ImportProductsInput,
    command=ImportProducts,
    build=handlers.import_products_command,
    handler=None,
    who=Who.STAFF,
    summary=(
        "Import up to 50,000 products (staff). Long-running: reports "
        "`progress` 0 to 100 and resumes after a crash; `result` counts "
        "`imported` and `skipped` (SKUs already registered)."
    ),
    refusals=(),
    queue="imports",
    long_running=True,
    progress_pushes=True,
)

PLACE_ORDER: CommandSpec[PlaceOrder] = CommandSpec(
    name="place-order",
    input=inputs.PlaceOrderInput,
    command=PlaceOrder,
    build=handlers.place_order_command,
    handler=handlers.place_order,
    who=Who.CUSTOMER,
    summary="Place an order, reserving stock on every line at once.",
    refusals=("product_not_found", "insufficient_stock", "duplicate_id"),
    creates="order_id",
)

PAY_ORDER: CommandSpec[PayOrder] = CommandSpec(
    name="pay-order",
    input=inputs.PayOrderInput,
    command=PayOrder,
    build=handlers.pay_order_command,
    handler=handlers.pay_order,
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
)

CANCEL_ORDER: CommandSpec[CancelOrder] = CommandSpec(
    name="cancel-order",
    input=inputs.CancelOrderInput,
    command=CancelOrder,
    build=handlers.cancel_order_command,
    handler=handlers.cancel_order,
    who=Who.ORDER_OWNER_OR_STAFF,
    summary=(
        "Cancel an order and release its stock; refused once shipped or "
        "while a payment runs. A paid order is refunded afterwards."
    ),
    refusals=("order_not_found", "invalid_state", "payment_in_progress"),
    refers_to="order_id",
)

SHIP_ORDER: CommandSpec[ShipOrder] = CommandSpec(
    name="ship-order",
    input=inputs.ShipOrderInput,
    command=ShipOrder,
    build=handlers.ship_order_command,
    handler=handlers.ship_order,
    who=Who.STAFF,
    summary="Ship a paid order (staff).",
    refusals=("order_not_found", "invalid_state"),
    refers_to="order_id",
)

FORGET_CUSTOMER: CommandSpec[ForgetCustomer] = CommandSpec(
    name="forget-customer",
    input=inputs.ForgetCustomerInput,
    command=ForgetCustomer,
    build=handlers.forget_customer_command,
    handler=handlers.forget_customer,
    who=Who.STAFF,
    summary=(
        "Erase a customer's personal data by crypto-shredding (staff): "
        "their data key is destroyed, so the personal fields of their "
        "events read as `[erased]`; their command bodies, read models "
        "and user record are erased too. Events stay; cannot be undone. "
        "Forgetting a forgotten customer succeeds again and changes nothing."
    ),
    refusals=("customer_not_found",),
)

UPDATE_ORDER: CommandSpec[UpdateOrder] = CommandSpec(
    name="update-order",
    input=inputs.UpdateOrderInput,
    command=UpdateOrder,
    build=handlers.update_order_command,
    handler=handlers.update_order,
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
)

COMMANDS: dict[str, CommandSpec[Any]] = {
    spec.name: spec
    for spec in (
        REGISTER_PRODUCT,
        RESTOCK_PRODUCT,
        IMPORT_PRODUCTS,
        PLACE_ORDER,
        PAY_ORDER,
        CANCEL_ORDER,
        SHIP_ORDER,
        FORGET_CUSTOMER,
        UPDATE_ORDER,
    )
}


def spec_of(record: CommandRecord) -> CommandSpec[Any]:
    """The spec of a stored command."""
    return COMMANDS[record.type]


def to_json(data: Any) -> Any:
    """Make validated data JSON-ready (UUIDs as strings)."""
    if isinstance(data, dict):
        return {key: to_json(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [to_json(value) for value in data]
    if isinstance(data, UUID):
        return str(data)
    return data
