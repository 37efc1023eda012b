"""Order changes (update-order's events) in every projection, batched or not.

A change of lines and of address reaches the read models whether it shares a
batch with the order's placement, payment or cancellation or not; applying
each event twice, one by one, gives the batch's rows; a rebuild gives them too.
"""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID, uuid4

import pytest

from commands_app.domain.events import (
    OrderCancelled,
    OrderLine,
    OrderLinesChanged,
    OrderPaid,
    OrderPlaced,
    ShippingAddressChanged,
    StockReleased,
    StockReserved,
)
from projections import rebuild
from projections.models import (
    CustomerOrderHistory,
    DailySales,
    OrderSummary,
    ProductCatalogue,
)
from projections.registry import PROJECTOR_NAMES

from .conftest import ADDRESS, Store, rows, rows_applied_twice, settle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

LYON = replace(ADDRESS, line1="2 place Bellecour", city="Lyon", postal_code="69002")


def line(product_id: UUID, quantity: int, price: int) -> OrderLine:
    return OrderLine(
        product_id=product_id,
        sku="X",
        name="Product",
        quantity=quantity,
        unit_price_cents=price,
    )


def changed_order(store: Store, mug: UUID, tea: UUID, *, then: str) -> UUID:
    """Place 2 mugs, change to 1 mug and 3 teas and the address, then pay or cancel."""
    order_id = uuid4()
    stream = f"order-{order_id}"
    store.append(
        f"product-{mug}", StockReserved(product_id=mug, order_id=order_id, quantity=2)
    )
    store.append(
        stream,
        OrderPlaced(
            order_id=order_id,
            customer_id=7,
            lines=(line(mug, 2, 1200),),
            shipping_address=ADDRESS,
            total_cents=2400,
            currency="EUR",
        ),
    )
    store.append(
        stream,
        OrderLinesChanged(
            order_id=order_id,
            lines=(line(mug, 1, 1200), line(tea, 3, 450)),
            total_cents=1200 + 3 * 450,
            changed_by=7,
        ),
        ShippingAddressChanged(order_id=order_id, shipping_address=LYON, changed_by=7),
    )
    store.append(
        f"product-{mug}", StockReleased(product_id=mug, order_id=order_id, quantity=1)
    )
    store.append(
        f"product-{tea}", StockReserved(product_id=tea, order_id=order_id, quantity=3)
    )
    if then == "paid":
        store.append(
            stream,
            OrderPaid(
                order_id=order_id,
                amount_cents=2550,
                payment_id="pay-1",
                card_last4="4242",
            ),
        )
    else:
        store.append(
            stream,
            OrderCancelled(
                order_id=order_id, reason="", cancelled_by=7, refund_cents=0
            ),
        )
        store.append(
            f"product-{mug}",
            StockReleased(product_id=mug, order_id=order_id, quantity=1),
        )
        store.append(
            f"product-{tea}",
            StockReleased(product_id=tea, order_id=order_id, quantity=3),
        )
    return order_id


@pytest.mark.parametrize("rounds", ["one batch", "event by event"])
def test_changed_orders_reach_every_read_model(store: Store, rounds: str) -> None:
    mug = store.product("MUG-1", stock=20, price=1200)
    tea = store.product("TEA-1", stock=10, price=450)
    if rounds == "event by event":
        settle()
    paid = changed_order(store, mug, tea, then="paid")
    if rounds == "event by event":
        settle()
    cancelled = changed_order(store, mug, tea, then="cancelled")
    settle()

    summary = OrderSummary.objects.get(id=paid)
    assert summary.status == "paid"
    assert summary.total_cents == 2550
    assert [(row["quantity"], row["total_cents"]) for row in summary.lines] == [
        (1, 1200),
        (3, 1350),
    ]
    assert summary.shipping_address["city"] == "Lyon"
    assert [entry["event"] for entry in summary.history] == [
        "placed",
        "lines_changed",
        "shipping_address_changed",
        "paid",
    ]
    assert summary.history[1]["details"] == {"total_cents": 2550, "changed_by": 7}
    assert OrderSummary.objects.get(id=cancelled).status == "cancelled"
    history = CustomerOrderHistory.objects.get(order_id=paid)
    assert (history.status, history.total_cents, history.item_count) == (
        "paid",
        2550,
        4,
    )
    (day,) = DailySales.objects.all()
    assert (day.orders, day.revenue_cents, day.units, day.cancelled_orders) == (
        1,
        2550,
        4,
        1,
    )
    stock = dict(ProductCatalogue.objects.values_list("id", "available"))
    assert stock == {mug: 19, tea: 7}


def test_changes_applied_twice_or_rebuilt_give_the_same_rows(store: Store) -> None:
    mug = store.product("MUG-1", stock=20, price=1200)
    tea = store.product("TEA-1", stock=10, price=450)
    changed_order(store, mug, tea, then="paid")
    changed_order(store, mug, tea, then="cancelled")
    settle()
    for name in PROJECTOR_NAMES:
        live = rows(name)
        assert rows_applied_twice(name) == live, name
        assert rebuild.verify(name).equal, name
        rebuild.rebuild(name)
        assert rows(name) == live, name
