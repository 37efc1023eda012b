"""Every command's decision: given events, when command, then events or refusal.

Plain Python, no database: the domain is loaded from events and asked to decide.
"""

from __future__ import annotations

from uuid import uuid4

import pytest

from commands_app.domain import decisions
from commands_app.domain.commands import (
    CancelOrder,
    PlaceOrder,
    RegisterProduct,
    RequestedLine,
    RestockProduct,
    ShipOrder,
)
from commands_app.domain.errors import (
    DuplicateIdError,
    DuplicateSkuError,
    InsufficientStockError,
    InvalidStateError,
    OrderNotFoundError,
    PaymentInProgressError,
    ProductNotFoundError,
)
from commands_app.domain.events import (
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderRefunded,
    OrderShipped,
    PaymentCaptured,
    PaymentRequested,
    ProductRegistered,
    ProductRestocked,
    StockReleased,
    event_from_data,
    event_to_data,
)
from commands_app.domain.order import Order
from commands_app.domain.product import Product

from .given import (
    ADDRESS,
    ALICE,
    PAYMENT,
    appended,
    order,
    paid,
    pay,
    placed,
    product,
    registered,
    reserved,
)

pytestmark = [pytest.mark.unit]

# --- register-product -----------------------------------------------------------


def register(pid=None, sku="MUG-1") -> RegisterProduct:
    return RegisterProduct(
        product_id=pid or uuid4(),
        sku=sku,
        name="Mug",
        price_cents=1200,
        initial_stock=5,
    )


def test_registering_a_new_product_records_its_sku_price_and_stock():
    command = register()
    changed = decisions.register_product(command, existing=None, sku_owner=None)
    assert appended(changed) == [
        ProductRegistered(
            product_id=command.product_id,
            sku="MUG-1",
            name="Mug",
            price_cents=1200,
            initial_stock=5,
        )
    ]
    assert changed[0].version == 0


def test_registering_an_unknown_id_loaded_as_an_empty_stream_succeeds():
    command = register()
    empty = Product.from_events(command.product_id, [])
    changed = decisions.register_product(command, existing=empty, sku_owner=None)
    assert [type(e) for e in appended(changed)] == [ProductRegistered]


def test_registering_a_sku_already_taken_is_refused():
    owner = uuid4()
    with pytest.raises(DuplicateSkuError) as refusal:
        decisions.register_product(register(), existing=None, sku_owner=owner)
    assert refusal.value.code == "duplicate_sku"
    assert refusal.value.details == {"sku": "MUG-1", "product_id": str(owner)}


def test_registering_an_id_already_used_is_refused():
    history = registered()
    with pytest.raises(DuplicateIdError) as refusal:
        decisions.register_product(
            register(history.product_id, sku="OTHER-1"),
            existing=product(history),
            sku_owner=None,
        )
    assert refusal.value.code == "duplicate_id"


# --- restock-product -----------------------------------------------------------


def test_restocking_a_product_records_the_added_quantity():
    history = registered(stock=2)
    changed = decisions.restock_product(
        RestockProduct(product_id=history.product_id, quantity=3),
        product=product(history),
    )
    assert appended(changed) == [
        ProductRestocked(product_id=history.product_id, quantity=3)
    ]
    assert changed[0].version == 1
    assert isinstance(changed[0], Product)
    assert changed[0].available == 5


def test_restocking_an_unknown_product_is_refused():
    pid = uuid4()
    for loaded in (None, Product.from_events(pid, [])):
        with pytest.raises(ProductNotFoundError) as refusal:
            decisions.restock_product(
                RestockProduct(product_id=pid, quantity=1), product=loaded
            )
        assert refusal.value.code == "product_not_found"


@pytest.mark.parametrize("quantity", [0, -1])
def test_restocking_a_non_positive_quantity_is_refused(quantity):
    history = registered()
    with pytest.raises(InvalidStateError):
        decisions.restock_product(
            RestockProduct(product_id=history.product_id, quantity=quantity),
            product=product(history),
        )


# --- place-order ---------------------------------------------------------------


def place(order_id, *lines) -> PlaceOrder:
    return PlaceOrder(
        order_id=order_id,
        customer_id=ALICE,
        lines=tuple(
            RequestedLine(product_id=p.product_id, quantity=q) for p, q in lines
        ),
        shipping_address=ADDRESS,
    )


def test_placing_an_order_reserves_stock_on_every_line_with_the_total():
    mug, tea = registered(stock=5, price=1200), registered(stock=2, price=350)
    order_id = uuid4()
    changed = decisions.place_order(
        place(order_id, (mug, 2), (tea, 1)),
        existing=None,
        products={mug.product_id: product(mug), tea.product_id: product(tea)},
    )
    assert appended(changed) == [
        OrderPlaced(
            order_id=order_id,
            customer_id=ALICE,
            lines=(
                OrderLine(
                    product_id=mug.product_id,
                    sku=mug.sku,
                    name="Mug",
                    quantity=2,
                    unit_price_cents=1200,
                ),
                OrderLine(
                    product_id=tea.product_id,
                    sku=tea.sku,
                    name="Mug",
                    quantity=1,
                    unit_price_cents=350,
                ),
            ),
            shipping_address=ADDRESS,
            total_cents=2 * 1200 + 350,
            currency="EUR",
        ),
        reserved(mug, order_id, 2),
        reserved(tea, order_id, 1),
    ]
    # Each product is appended at the version it was loaded at.
    assert [agg.version for agg in changed] == [0, 1, 1]


def test_placing_an_order_merges_lines_of_one_product():
    mug = registered(stock=5, price=100)
    order_id = uuid4()
    changed = decisions.place_order(
        place(order_id, (mug, 2), (mug, 3)),
        existing=None,
        products={mug.product_id: product(mug)},
    )
    events = appended(changed)
    assert events[1:] == [reserved(mug, order_id, 5)]
    assert isinstance(events[0], OrderPlaced)
    assert [line.quantity for line in events[0].lines] == [5]
    assert events[0].total_cents == 500


def test_placing_an_order_for_exactly_the_available_stock_succeeds():
    mug = registered(stock=3)
    changed = decisions.place_order(
        place(uuid4(), (mug, 3)),
        existing=None,
        products={mug.product_id: product(mug)},
    )
    assert isinstance(changed[1], Product)
    assert changed[1].available == 0


def test_placing_an_order_with_any_line_short_of_stock_records_nothing():
    mug, tea = registered(stock=5), registered(stock=1)
    command = place(uuid4(), (mug, 1), (tea, 2))
    products = {mug.product_id: product(mug), tea.product_id: product(tea)}
    with pytest.raises(InsufficientStockError) as refusal:
        decisions.place_order(command, existing=None, products=products)
    assert refusal.value.code == "insufficient_stock"
    assert refusal.value.details == {
        "product_id": str(tea.product_id),
        "available": 1,
        "requested": 2,
    }


def test_placing_an_order_whose_merged_lines_exceed_the_stock_is_refused():
    mug = registered(stock=4)
    with pytest.raises(InsufficientStockError):
        decisions.place_order(
            place(uuid4(), (mug, 3), (mug, 2)),
            existing=None,
            products={mug.product_id: product(mug)},
        )


def test_placing_an_order_takes_earlier_reservations_into_account():
    mug = registered(stock=3)
    earlier = reserved(mug, uuid4(), 2)
    with pytest.raises(InsufficientStockError):
        decisions.place_order(
            place(uuid4(), (mug, 2)),
            existing=None,
            products={mug.product_id: product(mug, earlier)},
        )


def test_placing_an_order_for_an_unknown_product_is_refused():
    ghost = registered()
    for loaded in ({}, {ghost.product_id: None}):
        with pytest.raises(ProductNotFoundError) as refusal:
            decisions.place_order(
                place(uuid4(), (ghost, 1)), existing=None, products=loaded
            )
        assert refusal.value.details == {"product_id": str(ghost.product_id)}


def test_placing_an_order_with_an_id_already_used_is_refused():
    mug = registered()
    history = placed(uuid4(), [(mug, 1)])
    with pytest.raises(DuplicateIdError):
        decisions.place_order(
            place(history.order_id, (mug, 1)),
            existing=order(history),
            products={mug.product_id: product(mug)},
        )


# --- pay-order -----------------------------------------------------------------


def test_paying_a_placed_order_requests_the_payment_and_charges_nothing_yet():
    mug = registered(price=700)
    history = placed(uuid4(), [(mug, 2)])
    changed = decisions.pay_order(pay(history.order_id), order=order(history))
    assert appended(changed) == [
        PaymentRequested(
            order_id=history.order_id,
            payment_id=PAYMENT,
            amount_cents=1400,
            card_last4="4242",
        )
    ]
    assert changed[0].version == 1
    assert isinstance(changed[0], Order)
    assert changed[0].status == "payment_pending"


def test_paying_another_customers_order_is_refused_as_not_found():
    history = placed(uuid4(), [(registered(price=700), 2)])
    with pytest.raises(OrderNotFoundError):
        decisions.pay_order(pay(history.order_id, by=ALICE + 1), order=order(history))


@pytest.mark.parametrize("later", ["paid", "shipped", "cancelled"])
def test_paying_an_order_that_is_not_placed_is_refused(later):
    history = _order_history(later)
    with pytest.raises(InvalidStateError) as refusal:
        decisions.pay_order(pay(history[0].order_id), order=order(*history))
    assert refusal.value.code == "invalid_state"
    assert refusal.value.details["status"] == later


def _pending(price: int = 700) -> tuple[OrderPlaced, PaymentRequested]:
    history = placed(uuid4(), [(registered(price=price), 2)])
    requested = PaymentRequested(
        order_id=history.order_id,
        payment_id=PAYMENT,
        amount_cents=history.total_cents,
        card_last4="4242",
    )
    return history, requested


def test_a_second_payment_while_one_is_pending_is_refused_as_in_progress():
    history, requested = _pending()
    with pytest.raises(PaymentInProgressError) as refusal:
        decisions.pay_order(pay(history.order_id), order=order(history, requested))
    assert refusal.value.code == "payment_in_progress"


def test_cancelling_while_a_payment_is_pending_is_refused_as_in_progress():
    history, requested = _pending()
    with pytest.raises(PaymentInProgressError):
        order(history, requested).cancel(reason="", cancelled_by=ALICE)


def test_a_captured_payment_makes_the_order_paid():
    history, requested = _pending()
    loaded = order(history, requested)
    loaded.capture(
        payment_id=str(PAYMENT), amount_cents=1400, card_last4="4242", reference="ch_x"
    )
    assert loaded.status == "paid"
    assert loaded.paid_cents == 1400
    assert loaded.payment_reference == "ch_x"


def test_a_declined_payment_makes_the_order_payable_again():
    history, requested = _pending()
    loaded = order(history, requested)
    loaded.decline(payment_id=str(PAYMENT), decline_code="card_declined")
    assert loaded.status == "placed"
    loaded.check_payable()


def test_an_outcome_for_another_payment_is_refused():
    history, requested = _pending()
    with pytest.raises(InvalidStateError):
        order(history, requested).capture(
            payment_id=str(uuid4()), amount_cents=1400, card_last4="", reference="ch"
        )


def test_a_stored_paid_event_loads_as_a_captured_payment():
    history = placed(uuid4(), [(registered(price=700), 2)])
    event = event_from_data("order.paid.v1", event_to_data(paid(history)))
    assert isinstance(event, PaymentCaptured)
    assert event.gateway_reference == "ch_1"
    assert order(history, event).status == "paid"


def test_a_cancelled_paid_order_records_its_refund_once():
    history = placed(uuid4(), [(registered(price=700), 2)])
    loaded = order(history, paid(history))
    loaded.cancel(reason="", cancelled_by=ALICE)
    loaded.refund(refund_id="r1", amount_cents=1400, reference="re_1")
    assert isinstance(loaded.pending_events[-1], OrderRefunded)
    assert loaded.refunded_cents == 1400
    with pytest.raises(InvalidStateError):
        loaded.refund(refund_id="r2", amount_cents=1, reference="re_2")


# --- cancel-order --------------------------------------------------------------


def cancel(order_id) -> CancelOrder:
    return CancelOrder(order_id=order_id, reason="changed my mind", cancelled_by=ALICE)


def test_cancelling_a_placed_order_releases_the_stock_of_every_line():
    mug, tea = registered(stock=5), registered(stock=5)
    order_id = uuid4()
    history = placed(order_id, [(mug, 2), (tea, 3)])
    products = {
        mug.product_id: product(mug, reserved(mug, order_id, 2)),
        tea.product_id: product(tea, reserved(tea, order_id, 3)),
    }
    changed = decisions.cancel_order(
        cancel(order_id), order=order(history), products=products
    )
    assert appended(changed) == [
        OrderCancelled(
            order_id=order_id,
            reason="changed my mind",
            cancelled_by=ALICE,
            refund_cents=0,
        ),
        StockReleased(product_id=mug.product_id, order_id=order_id, quantity=2),
        StockReleased(product_id=tea.product_id, order_id=order_id, quantity=3),
    ]
    assert [p.available for p in products.values()] == [5, 5]


def test_cancelling_releases_only_what_this_order_reserved():
    mug = registered(stock=10)
    order_id, other = uuid4(), uuid4()
    history = placed(order_id, [(mug, 2)])
    loaded = product(mug, reserved(mug, other, 4), reserved(mug, order_id, 2))
    changed = decisions.cancel_order(
        cancel(order_id), order=order(history), products={mug.product_id: loaded}
    )
    assert appended(changed)[1:] == [
        StockReleased(product_id=mug.product_id, order_id=order_id, quantity=2)
    ]
    assert loaded.available == 6


def test_cancelling_a_paid_order_refunds_the_paid_amount():
    mug = registered(price=900)
    order_id = uuid4()
    history = placed(order_id, [(mug, 1)])
    changed = decisions.cancel_order(
        cancel(order_id),
        order=order(history, paid(history)),
        products={mug.product_id: product(mug, reserved(mug, order_id, 1))},
    )
    cancelled = appended(changed)[0]
    assert isinstance(cancelled, OrderCancelled)
    assert cancelled.refund_cents == 900


@pytest.mark.parametrize("later", ["shipped", "cancelled"])
def test_cancelling_a_shipped_or_cancelled_order_is_refused(later):
    history = _order_history(later)
    with pytest.raises(InvalidStateError):
        decisions.cancel_order(
            cancel(history[0].order_id), order=order(*history), products={}
        )


# --- ship-order ----------------------------------------------------------------


def test_shipping_a_paid_order_records_the_tracking_number():
    history = _order_history("paid")
    changed = decisions.ship_order(
        ShipOrder(order_id=history[0].order_id, tracking_number="TRK-1"),
        order=order(*history),
    )
    assert appended(changed) == [
        OrderShipped(order_id=history[0].order_id, tracking_number="TRK-1")
    ]


@pytest.mark.parametrize("state", ["placed", "shipped", "cancelled"])
def test_shipping_an_order_that_is_not_paid_is_refused(state):
    history = _order_history(state)
    with pytest.raises(InvalidStateError):
        decisions.ship_order(
            ShipOrder(order_id=history[0].order_id, tracking_number=""),
            order=order(*history),
        )


def _order_history(state: str) -> list:
    """Return the events of an order that ends in `state`."""
    history: list = [placed(uuid4(), [(registered(price=250), 2)])]
    if state in ("paid", "shipped"):
        history.append(paid(history[0]))
    if state == "shipped":
        history.append(
            OrderShipped(order_id=history[0].order_id, tracking_number="TRK")
        )
    if state == "cancelled":
        history.append(
            OrderCancelled(
                order_id=history[0].order_id,
                reason="",
                cancelled_by=ALICE,
                refund_cents=0,
            )
        )
    assert Order.from_events(history[0].order_id, history).status == state
    return history
