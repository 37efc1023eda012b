"""The Order aggregate: loading, visibility and its life cycle (no database)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from commands_app.domain.errors import InvalidStateError, OrderNotFoundError
from commands_app.domain.events import OrderCancelled, OrderShipped
from commands_app.domain.order import Order

from .given import ALICE, PAYMENT, order, paid, placed, registered

pytestmark = [pytest.mark.unit]


def test_loading_an_order_without_events_is_refused_as_not_found():
    with pytest.raises(OrderNotFoundError) as refusal:
        Order.from_events(uuid4(), [])
    assert refusal.value.code == "order_not_found"


def test_a_loaded_order_knows_its_customer_lines_total_and_version():
    mug = registered(price=300)
    history = placed(uuid4(), [(mug, 3)])
    loaded = order(history, paid(history))
    assert loaded.customer_id == ALICE
    assert loaded.total_cents == 900
    assert loaded.paid_cents == 900
    assert loaded.status == "paid"
    assert loaded.version == 2
    assert loaded.pending_events == []


def test_a_loaded_order_knows_what_it_reserved_of_each_product():
    mug, tea = registered(), registered()
    loaded = order(placed(uuid4(), [(mug, 2), (tea, 3)]))
    assert loaded.reserved_quantities() == {mug.product_id: 2, tea.product_id: 3}


def test_another_customers_order_is_invisible_but_staff_see_it():
    loaded = order(placed(uuid4(), [(registered(), 1)]))
    loaded.check_visible_to(user_id=ALICE, is_staff=False)
    loaded.check_visible_to(user_id=ALICE + 1, is_staff=True)
    with pytest.raises(OrderNotFoundError):
        loaded.check_visible_to(user_id=ALICE + 1, is_staff=False)


def test_an_order_goes_placed_paid_shipped_and_then_refuses_everything():
    history = placed(uuid4(), [(registered(price=100), 1)])
    loaded = order(history)
    loaded.request_payment(payment_id=PAYMENT, card_last4="4242")
    loaded.capture(
        payment_id=str(PAYMENT), amount_cents=100, card_last4="4242", reference="ch_1"
    )
    loaded.ship(tracking_number="TRK")
    assert loaded.status == "shipped"
    assert isinstance(loaded.pending_events[-1], OrderShipped)
    with pytest.raises(InvalidStateError):
        loaded.cancel(reason="", cancelled_by=ALICE)
    with pytest.raises(InvalidStateError):
        loaded.request_payment(payment_id=PAYMENT, card_last4="4242")
    assert len(loaded.pending_events) == 3


def test_a_cancelled_order_cannot_be_cancelled_again():
    loaded = order(placed(uuid4(), [(registered(), 1)]))
    loaded.cancel(reason="first", cancelled_by=ALICE)
    assert isinstance(loaded.pending_events[-1], OrderCancelled)
    with pytest.raises(InvalidStateError) as refusal:
        loaded.cancel(reason="second", cancelled_by=ALICE)
    assert refusal.value.details["status"] == "cancelled"
    assert len(loaded.pending_events) == 1
