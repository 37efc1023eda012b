"""The Product aggregate: stock arithmetic and its invariant (no database)."""

from __future__ import annotations

from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands_app.domain.errors import InsufficientStockError, InvalidStateError
from commands_app.domain.events import (
    ProductRestocked,
    StockReleased,
    StockReserved,
)
from commands_app.domain.product import Product

from .given import product, registered


def test_reserving_more_than_available_is_refused_and_records_nothing():
    mug = product(registered(stock=2))
    with pytest.raises(InsufficientStockError):
        mug.reserve(order_id=uuid4(), quantity=3)
    assert mug.available == 2
    assert mug.pending_events == []


@pytest.mark.parametrize("quantity", [0, -2])
def test_reserving_a_non_positive_quantity_is_refused(quantity):
    mug = product(registered(stock=2))
    with pytest.raises(InvalidStateError):
        mug.reserve(order_id=uuid4(), quantity=quantity)


def test_releasing_twice_gives_the_stock_back_once():
    order_id = uuid4()
    mug = product(registered(stock=5))
    mug.reserve(order_id=order_id, quantity=4)
    mug.release(order_id=order_id)
    mug.release(order_id=order_id)
    assert mug.available == 5
    assert [type(e) for e in mug.pending_events] == [StockReserved, StockReleased]


def test_releasing_for_an_order_that_reserved_nothing_records_nothing():
    mug = product(registered(stock=5))
    mug.release(order_id=uuid4())
    assert mug.pending_events == []


def test_a_reloaded_product_remembers_open_reservations():
    mug = product(registered(stock=5))
    order_id = uuid4()
    mug.reserve(order_id=order_id, quantity=2)
    again = Product.from_events(
        mug.id, [registered(mug.id, stock=5), *mug.pending_events]
    )
    assert again.available == 3
    assert again.reserved_for == {order_id: 2}


operations = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(0, 5), st.integers(-2, 8)),
        st.tuples(st.just("release"), st.integers(0, 5), st.just(0)),
        st.tuples(st.just("restock"), st.just(0), st.integers(-2, 8)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(initial=st.integers(0, 10), steps=operations)
def test_no_sequence_of_reserve_release_restock_makes_stock_negative(initial, steps):
    orders = [uuid4() for _ in range(6)]
    mug = product(registered(stock=initial))
    for action, index, quantity in steps:
        try:
            if action == "reserve":
                mug.reserve(order_id=orders[index], quantity=quantity)
            elif action == "release":
                mug.release(order_id=orders[index])
            else:
                mug.restock(quantity)
        except (InsufficientStockError, InvalidStateError):
            pass
        assert mug.available >= 0
    events = mug.pending_events
    restocked = sum(e.quantity for e in events if isinstance(e, ProductRestocked))
    reserved = sum(e.quantity for e in events if isinstance(e, StockReserved))
    released = sum(e.quantity for e in events if isinstance(e, StockReleased))
    assert mug.available == initial + restocked - reserved + released
    # Replaying what was recorded gives the same stock.
    replayed = Product.from_events(mug.id, [registered(mug.id, stock=initial), *events])
    assert replayed.available == mug.available
