"""update-order's decision: given events, when the order changes, then events.

Plain Python, no database: lines change until an order is paid (stock moves by
the difference), the address until it ships, and a refusal records nothing.
"""

from __future__ import annotations

from uuid import uuid4

import pytest

from commands_app.domain import decisions
from commands_app.domain.commands import RequestedLine, UpdateOrder
from commands_app.domain.errors import (
    InsufficientStockError,
    InvalidStateError,
    PaymentInProgressError,
    ProductNotFoundError,
)
from commands_app.domain.events import (
    Address,
    OrderCancelled,
    OrderLine,
    OrderLinesChanged,
    OrderShipped,
    PaymentRequested,
    ShippingAddressChanged,
    StockReleased,
    StockReserved,
)

from .given import ALICE, PAYMENT, appended, order, paid, placed, product, registered

pytestmark = [pytest.mark.unit]

LYON = Address(
    name="Alice Martin",
    line1="2 place Bellecour",
    city="Lyon",
    postal_code="69002",
    country="FR",
)
STAFF = 1


def update(order_id, *lines, address=None, by=ALICE) -> UpdateOrder:
    return UpdateOrder(
        order_id=order_id,
        changed_by=by,
        lines=tuple(
            RequestedLine(product_id=p.product_id, quantity=q) for p, q in lines
        )
        or None,
        shipping_address=address,
    )


def line(p, quantity, price=None) -> OrderLine:
    return OrderLine(
        product_id=p.product_id,
        sku=p.sku,
        name=p.name,
        quantity=quantity,
        unit_price_cents=p.price_cents if price is None else price,
    )


def an_order_of(mug_quantity=2, *, stock=10):
    """Return the events of a placed order of mugs, and the loaded mug."""
    mug = registered(stock=stock, price=400)
    order_id = uuid4()
    history = placed(order_id, [(mug, mug_quantity)])
    reserved = StockReserved(
        product_id=mug.product_id, order_id=order_id, quantity=mug_quantity
    )
    return history, mug, product(mug, reserved)


def test_raising_a_quantity_reserves_only_the_difference():
    history, mug, loaded = an_order_of(2)
    changed = decisions.update_order(
        update(history.order_id, (mug, 5)),
        order=order(history),
        products={mug.product_id: loaded},
    )
    assert appended(changed) == [
        OrderLinesChanged(
            order_id=history.order_id,
            lines=(line(mug, 5),),
            total_cents=5 * 400,
            changed_by=ALICE,
        ),
        StockReserved(product_id=mug.product_id, order_id=history.order_id, quantity=3),
    ]
    assert loaded.available == 5


def test_replacing_a_product_releases_the_old_and_reserves_the_new():
    history, mug, loaded = an_order_of(2)
    tea = registered(stock=3, price=250)
    teas = product(tea)
    changed = decisions.update_order(
        update(history.order_id, (tea, 3)),
        order=order(history),
        products={mug.product_id: loaded, tea.product_id: teas},
    )
    assert appended(changed)[1:] == [
        StockReleased(product_id=mug.product_id, order_id=history.order_id, quantity=2),
        StockReserved(product_id=tea.product_id, order_id=history.order_id, quantity=3),
    ]
    assert (loaded.available, teas.available) == (10, 0)
    lines_changed = appended(changed)[0]
    assert isinstance(lines_changed, OrderLinesChanged)
    assert lines_changed.total_cents == 750
    # Each product is appended at the version it was loaded at.
    assert [a.version for a in changed] == [1, 2, 1]


def test_lowering_a_quantity_releases_the_difference_and_keeps_the_price():
    history, mug, _ = an_order_of(4)
    repriced = registered(mug.product_id, stock=10, price=999)
    loaded = product(
        repriced,
        StockReserved(product_id=mug.product_id, order_id=history.order_id, quantity=4),
    )
    changed = decisions.update_order(
        update(history.order_id, (mug, 1)),
        order=order(history),
        products={mug.product_id: loaded},
    )
    events = appended(changed)
    assert isinstance(events[0], OrderLinesChanged)
    assert events[0].lines[0].unit_price_cents == 400, "the ordered price holds"
    assert events[1] == StockReleased(
        product_id=mug.product_id, order_id=history.order_id, quantity=3
    )


def test_lines_short_of_stock_are_refused_and_nothing_is_recorded():
    history, mug, loaded = an_order_of(2, stock=4)
    with pytest.raises(InsufficientStockError) as refusal:
        decisions.update_order(
            update(history.order_id, (mug, 5), address=LYON),
            order=order(history),
            products={mug.product_id: loaded},
        )
    assert refusal.value.code == "insufficient_stock"
    assert refusal.value.details["available"] == 2
    assert refusal.value.details["requested"] == 3


def test_an_unknown_product_is_refused():
    history, mug, loaded = an_order_of(2)
    ghost = registered()
    with pytest.raises(ProductNotFoundError):
        decisions.update_order(
            update(history.order_id, (ghost, 1)),
            order=order(history),
            products={mug.product_id: loaded, ghost.product_id: None},
        )


def test_the_same_lines_and_address_change_nothing():
    history, mug, loaded = an_order_of(2)
    changed = decisions.update_order(
        update(history.order_id, (mug, 1), (mug, 1), address=history.shipping_address),
        order=order(history),
        products={mug.product_id: loaded},
    )
    assert changed == []


def test_changing_the_address_of_a_paid_order_records_it():
    history, _, _ = an_order_of(2)
    changed = decisions.update_order(
        update(history.order_id, address=LYON, by=STAFF),
        order=order(history, paid(history)),
        products={},
    )
    assert appended(changed) == [
        ShippingAddressChanged(
            order_id=history.order_id, shipping_address=LYON, changed_by=STAFF
        )
    ]
    assert order(history, paid(history), *appended(changed)).shipping_address == LYON


def test_the_lines_of_a_paid_order_are_refused():
    history, mug, loaded = an_order_of(2)
    with pytest.raises(InvalidStateError) as refusal:
        decisions.update_order(
            update(history.order_id, (mug, 3)),
            order=order(history, paid(history)),
            products={mug.product_id: loaded},
        )
    assert refusal.value.code == "invalid_state"
    assert "paid order cannot be given new lines" in str(refusal.value)


def test_the_lines_of_an_order_being_paid_are_refused_as_in_progress():
    history, mug, loaded = an_order_of(2)
    requested = PaymentRequested(
        order_id=history.order_id,
        payment_id=PAYMENT,
        amount_cents=800,
        card_last4="4242",
    )
    with pytest.raises(PaymentInProgressError):
        decisions.update_order(
            update(history.order_id, (mug, 3)),
            order=order(history, requested),
            products={mug.product_id: loaded},
        )
    # The address may still change while the payment runs.
    changed = decisions.update_order(
        update(history.order_id, address=LYON),
        order=order(history, requested),
        products={},
    )
    assert len(appended(changed)) == 1


@pytest.mark.parametrize("closed", ["shipped", "cancelled"])
def test_the_address_of_a_shipped_or_cancelled_order_is_refused(closed):
    history, _, _ = an_order_of(2)
    after = (
        [paid(history), OrderShipped(order_id=history.order_id, tracking_number="T")]
        if closed == "shipped"
        else [
            OrderCancelled(
                order_id=history.order_id,
                reason="",
                cancelled_by=ALICE,
                refund_cents=0,
            )
        ]
    )
    with pytest.raises(InvalidStateError) as refusal:
        decisions.update_order(
            update(history.order_id, address=LYON),
            order=order(history, *after),
            products={},
        )
    assert f"A {closed} order cannot be sent to another address" in str(refusal.value)


def test_a_loaded_order_knows_its_changed_lines_total_and_address():
    history, mug, _ = an_order_of(2)
    loaded = order(
        history,
        OrderLinesChanged(
            order_id=history.order_id,
            lines=(line(mug, 3),),
            total_cents=1200,
            changed_by=ALICE,
        ),
        ShippingAddressChanged(
            order_id=history.order_id, shipping_address=LYON, changed_by=ALICE
        ),
    )
    assert loaded.total_cents == 1200
    assert loaded.reserved_quantities() == {mug.product_id: 3}
    assert loaded.shipping_address == LYON
    assert loaded.currency == "EUR"
    assert loaded.version == 3
