"""Given events, when command, then events: helpers for domain tests (no database)."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID, uuid4

from commands_app.domain.aggregate import AnyAggregate
from commands_app.domain.commands import PayOrder
from commands_app.domain.events import (
    Address,
    Event,
    OrderLine,
    OrderPaid,
    OrderPlaced,
    ProductRegistered,
    StockReserved,
)
from commands_app.domain.order import Order
from commands_app.domain.product import Product

ADDRESS = Address(
    name="Alice Martin",
    line1="1 rue de Rivoli",
    city="Paris",
    postal_code="75001",
    country="FR",
)
ALICE = 7


def registered(product_id: UUID | None = None, *, stock: int = 10, price: int = 500):
    pid = product_id or uuid4()
    return ProductRegistered(
        product_id=pid,
        sku=f"SKU-{pid.hex[:6]}",
        name="Mug",
        price_cents=price,
        initial_stock=stock,
    )


def product(*events: Event) -> Product:
    """Load a product from its history, as the store would."""
    first = events[0]
    assert isinstance(first, ProductRegistered)
    return Product.from_events(first.product_id, events)


def placed(order_id: UUID, lines: Iterable[tuple[ProductRegistered, int]]):
    order_lines = tuple(
        OrderLine(
            product_id=p.product_id,
            sku=p.sku,
            name=p.name,
            quantity=quantity,
            unit_price_cents=p.price_cents,
        )
        for p, quantity in lines
    )
    return OrderPlaced(
        order_id=order_id,
        customer_id=ALICE,
        lines=order_lines,
        shipping_address=ADDRESS,
        total_cents=sum(line.total_cents for line in order_lines),
        currency="EUR",
    )


def reserved(p: ProductRegistered, order_id: UUID, quantity: int) -> StockReserved:
    return StockReserved(product_id=p.product_id, order_id=order_id, quantity=quantity)


def paid(order: OrderPlaced, amount: int | None = None) -> OrderPaid:
    return OrderPaid(
        order_id=order.order_id,
        amount_cents=order.total_cents if amount is None else amount,
        payment_id="ch_1",
        card_last4="4242",
    )


def order(*events: Event) -> Order:
    first = events[0]
    assert isinstance(first, OrderPlaced)
    return Order.from_events(first.order_id, events)


PAYMENT = UUID("00000000-0000-4000-8000-0000000000a1")


def pay(order_id: UUID, *, by: int = ALICE) -> PayOrder:
    return PayOrder(
        order_id=order_id, payment_id=PAYMENT, paid_by=by, card_last4="4242"
    )


def appended(aggregates: Iterable[AnyAggregate]) -> list[Event]:
    """Return every event the decision would append, in order."""
    return [e for agg in aggregates for e in agg.pending_events]
