"""Command handlers: load aggregates from the store, let the domain decide.

Each command's typed command builder and handler are named in its `CommandSpec`
(`registry.py`); execution asks the spec, never a table of names.

Each handler returns the changed aggregates (with their pending events) and a
result for the command's status; refusals are raised as `DomainError`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from . import eventstore, privacy, snapshots
from .domain import decisions
from .domain.commands import (
    CancelOrder,
    ImportedProduct,
    ImportProducts,
    PayOrder,
    PlaceOrder,
    RegisterProduct,
    RequestedLine,
    RestockProduct,
    ShipOrder,
    UpdateOrder,
)
from .domain.customer import Customer, ForgetCustomer, customer_stream
from .domain.customer import forget_customer as decide_forget
from .domain.decisions import Aggregate
from .domain.events import Address, OrderLinesChanged
from .domain.order import Order, order_stream
from .domain.product import Product
from .models import ProductSku


@dataclass
class Context:
    """Who sent the command, for ownership rules the domain enforces."""

    command_id: UUID
    user_id: int
    is_staff: bool


@dataclass
class Outcome:
    changed: list[Aggregate]
    result: dict[str, Any] = field(default_factory=dict)
    new_skus: dict[str, UUID] = field(default_factory=dict)
    # True: the command stays running after the append, until an effect the
    # events decided finishes it (pay-order: the charge's outcome).
    awaits_effect: bool = False
    # Run in the appending transaction, after the append (forget-customer's
    # erasure of the write side's personal data).
    in_transaction: Callable[[], object] | None = None


def load_products(product_ids: Iterable[UUID]) -> dict[UUID, Product]:
    return snapshots.load_products(list(dict.fromkeys(product_ids)))


def load_order(order_id: UUID, context: Context) -> Order:
    events = eventstore.load_streams([order_stream(order_id)])[order_stream(order_id)]
    order = Order.from_events(order_id, events)
    order.check_visible_to(user_id=context.user_id, is_staff=context.is_staff)
    return order


def _requested_lines(lines: list[dict[str, Any]]) -> tuple[RequestedLine, ...]:
    return tuple(
        RequestedLine(product_id=UUID(line["product_id"]), quantity=line["quantity"])
        for line in lines
    )


# The typed commands, built from the validated JSON payload stored with the
# command (`CommandSpec.command_from`) and the sender; the payload stays JSON.


def register_product_command(
    payload: dict[str, Any], context: Context
) -> RegisterProduct:
    return RegisterProduct(
        product_id=UUID(payload["product_id"]),
        sku=payload["sku"],
        name=payload["name"],
        price_cents=payload["price_cents"],
        initial_stock=payload["initial_stock"],
    )


def restock_product_command(
    payload: dict[str, Any], context: Context
) -> RestockProduct:
    return RestockProduct(
        product_id=UUID(payload["product_id"]), quantity=payload["quantity"]
    )


def import_products_command(
    payload: dict[str, Any], context: Context
) -> ImportProducts:
    return ImportProducts(
        products=tuple(
            ImportedProduct(
                sku=item["sku"],
                name=item["name"],
                price_cents=item["price_cents"],
                initial_stock=item["initial_stock"],
            )
            for item in payload["products"]
        )
    )


def place_order_command(payload: dict[str, Any], context: Context) -> PlaceOrder:
    return PlaceOrder(
        order_id=UUID(payload["order_id"]),
        customer_id=context.user_id,
        lines=_requested_lines(payload["lines"]),
        shipping_address=Address(**payload["shipping_address"]),
    )


def pay_order_command(payload: dict[str, Any], context: Context) -> PayOrder:
    return PayOrder(
        order_id=UUID(payload["order_id"]),
        payment_id=uuid.uuid4(),
        paid_by=context.user_id,
        card_last4=payload["card"]["last4"],
    )


def cancel_order_command(payload: dict[str, Any], context: Context) -> CancelOrder:
    return CancelOrder(
        order_id=UUID(payload["order_id"]),
        reason=payload.get("reason", ""),
        cancelled_by=context.user_id,
    )


def ship_order_command(payload: dict[str, Any], context: Context) -> ShipOrder:
    return ShipOrder(
        order_id=UUID(payload["order_id"]),
        tracking_number=payload.get("tracking_number", ""),
    )


def forget_customer_command(
    payload: dict[str, Any], context: Context
) -> ForgetCustomer:
    return ForgetCustomer(customer_id=int(payload["customer_id"]))


def update_order_command(payload: dict[str, Any], context: Context) -> UpdateOrder:
    address = payload.get("shipping_address")
    return UpdateOrder(
        order_id=UUID(payload["order_id"]),
        changed_by=context.user_id,
        lines=_requested_lines(payload["lines"]) if "lines" in payload else None,
        shipping_address=None if address is None else Address(**address),
    )


# The handlers: each takes its typed command and the sender.


def register_product(command: RegisterProduct, context: Context) -> Outcome:
    owner = ProductSku.objects.filter(sku=command.sku).values_list(
        "product_id", flat=True
    )
    changed = decisions.register_product(
        command,
        existing=load_products([command.product_id])[command.product_id],
        sku_owner=owner.first(),
    )
    return Outcome(
        changed,
        result={"product_id": str(command.product_id)},
        new_skus={command.sku: command.product_id},
    )


def restock_product(command: RestockProduct, context: Context) -> Outcome:
    product = load_products([command.product_id])[command.product_id]
    changed = decisions.restock_product(command, product=product)
    return Outcome(changed, result={"available": product.available})


def place_order(command: PlaceOrder, context: Context) -> Outcome:
    stream = order_stream(command.order_id)
    products, streams = snapshots.load(
        list(dict.fromkeys(line.product_id for line in command.lines)),
        streams=[stream],
    )
    existing = streams[stream]
    changed = decisions.place_order(
        command,
        existing=Order.from_events(command.order_id, existing) if existing else None,
        products=dict(products),
    )
    order = changed[0]
    assert isinstance(order, Order)
    return Outcome(
        changed,
        result={"order_id": str(order.id), "total_cents": order.total_cents},
    )


def pay_order(command: PayOrder, context: Context) -> Outcome:
    """Request the payment; the `charge` effect calls the gateway after commit."""
    order = load_order(command.order_id, context)
    changed = decisions.pay_order(command, order=order)
    return Outcome(
        changed,
        result={"payment_id": str(command.payment_id)},
        awaits_effect=True,
    )


def cancel_order(command: CancelOrder, context: Context) -> Outcome:
    order = load_order(command.order_id, context)
    products = load_products(line.product_id for line in order.lines)
    changed = decisions.cancel_order(command, order=order, products=products)
    return Outcome(changed, result={"refund_cents": order.paid_cents})


def ship_order(command: ShipOrder, context: Context) -> Outcome:
    order = load_order(command.order_id, context)
    return Outcome(decisions.ship_order(command, order=order))


def forget_customer(command: ForgetCustomer, context: Context) -> Outcome:
    """Forget a customer: record it once; erase their data in the same transaction."""
    stream = customer_stream(command.customer_id)
    customer = Customer.from_events(
        command.customer_id, eventstore.load_streams([stream])[stream]
    )
    changed = decide_forget(
        command, customer=customer, exists=privacy.is_customer(command.customer_id)
    )
    return Outcome(
        [changed],
        result={"customer_id": command.customer_id},
        in_transaction=lambda: privacy.erase_write_side(command.customer_id),
    )


def update_order(command: UpdateOrder, context: Context) -> Outcome:
    order = load_order(command.order_id, context)
    # Only a change of lines moves stock: an address alone reads no product.
    products = (
        {}
        if command.lines is None
        else load_products(
            [line.product_id for line in order.lines]
            + [line.product_id for line in command.lines]
        )
    )
    changed = decisions.update_order(command, order=order, products=products)
    changes = [
        "lines" if isinstance(event, OrderLinesChanged) else "shipping_address"
        for event in order.pending_events
    ]
    return Outcome(
        changed,
        result={
            "order_id": str(order.id),
            "total_cents": order.total_cents,
            "changed": changes,
        },
    )
