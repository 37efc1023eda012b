"""The Product aggregate: stock arithmetic and its invariant (no database)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands_app.domain import decisions
from commands_app.domain.commands import (
    CancelOrder,
    PlaceOrder,
    RequestedLine,
    RestockProduct,
)
from commands_app.domain.errors import (
    DomainError,
    InsufficientStockError,
    InvalidStateError,
)
from commands_app.domain.events import (
    Event,
    ProductRestocked,
    StockReleased,
    StockReserved,
)
from commands_app.domain.order import Order
from commands_app.domain.product import Product

from .given import ADDRESS, ALICE, product, registered, reserved

pytestmark = [pytest.mark.unit]


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


def test_releasing_gives_back_the_quantity_the_order_reserved():
    order_id = uuid4()
    mug = product(registered(stock=5))
    mug.reserve(order_id=order_id, quantity=4)
    mug.release(order_id=order_id, quantity=4)
    assert mug.available == 5
    assert mug.pending_events[-1] == StockReleased(
        product_id=mug.id, order_id=order_id, quantity=4
    )


@pytest.mark.parametrize("quantity", [0, -2])
def test_releasing_a_non_positive_quantity_is_refused_and_records_nothing(quantity):
    mug = product(registered(stock=5))
    with pytest.raises(InvalidStateError):
        mug.release(order_id=uuid4(), quantity=quantity)
    assert mug.pending_events == []


def test_a_products_state_does_not_grow_with_the_orders_it_has_seen():
    registration = registered(stock=100_000)
    one = product(registration, reserved(registration, uuid4(), 1))
    many = product(
        registration, *(reserved(registration, uuid4(), 1) for _ in range(5_000))
    )
    assert many.available == 100_000 - 5_000
    assert len(json.dumps(many.snapshot())) == len(json.dumps(one.snapshot()))


# --- Stock through orders: place, cancel (retried), restock -----------------------


class Store:
    """The streams of one product and its orders, reloaded for every decision."""

    def __init__(self, initial: int) -> None:
        self.registration = registered(stock=initial)
        self.product_events: list[Event] = [self.registration]
        self.orders: dict[UUID, list[Event]] = {}

    @property
    def product_id(self) -> UUID:
        return self.registration.product_id

    def product(self) -> Product:
        return Product.from_events(self.product_id, self.product_events)

    def append(self, changed: list[decisions.Aggregate]) -> None:
        for aggregate in changed:
            if isinstance(aggregate, Order):
                self.orders.setdefault(aggregate.id, []).extend(
                    aggregate.pending_events
                )
            else:
                self.product_events.extend(aggregate.pending_events)

    def place(self, order_id: UUID, quantities: list[int]) -> None:
        command = PlaceOrder(
            order_id=order_id,
            customer_id=ALICE,
            lines=tuple(
                RequestedLine(product_id=self.product_id, quantity=quantity)
                for quantity in quantities
            ),
            shipping_address=ADDRESS,
        )
        existing = self.orders.get(order_id)
        self.append(
            decisions.place_order(
                command,
                existing=Order.from_events(order_id, existing) if existing else None,
                products={self.product_id: self.product()},
            )
        )

    def cancel(self, order_id: UUID) -> None:
        command = CancelOrder(order_id=order_id, reason="", cancelled_by=ALICE)
        loaded = Order.from_events(order_id, self.orders.get(order_id, []))
        self.append(
            decisions.cancel_order(
                command, order=loaded, products={self.product_id: self.product()}
            )
        )

    def restock(self, quantity: int) -> None:
        command = RestockProduct(product_id=self.product_id, quantity=quantity)
        self.append(decisions.restock_product(command, product=self.product()))


steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("place"),
            st.integers(0, 5),
            st.lists(st.integers(-1, 6), min_size=1, max_size=3),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 5), st.just([])),
        st.tuples(st.just("restock"), st.just(0), st.lists(st.integers(-2, 8))),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(initial=st.integers(0, 10), steps=steps)
def test_no_sequence_of_orders_cancels_and_restocks_makes_stock_negative(
    initial, steps
):
    """Cancels are retried at random: an order still gives its stock back once."""
    store = Store(initial)
    order_ids = [uuid4() for _ in range(6)]
    for action, index, quantities in steps:
        try:
            if action == "place":
                store.place(order_ids[index], quantities)
            elif action == "cancel":
                store.cancel(order_ids[index])
            else:
                for quantity in quantities:
                    store.restock(quantity)
        except DomainError:
            pass
        assert store.product().available >= 0
    events = store.product_events
    restocked = sum(e.quantity for e in events if isinstance(e, ProductRestocked))
    reserved_by = _totals(e for e in events if isinstance(e, StockReserved))
    released_by = _totals(e for e in events if isinstance(e, StockReleased))
    assert store.product().available == (
        initial + restocked - sum(reserved_by.values()) + sum(released_by.values())
    )
    # Every cancelled order, and only those, gave back exactly what it reserved,
    # in one release.
    cancelled = {
        order_id
        for order_id, history in store.orders.items()
        if Order.from_events(order_id, history).status == "cancelled"
    }
    assert set(released_by) == cancelled
    assert sum(isinstance(e, StockReleased) for e in events) == len(cancelled)
    for order_id, released in released_by.items():
        assert released == reserved_by[order_id]


def _totals(events: Iterable[StockReserved | StockReleased]) -> dict[UUID, int]:
    totals: dict[UUID, int] = {}
    for event in events:
        totals[event.order_id] = totals.get(event.order_id, 0) + event.quantity
    return totals


def test_a_cancelled_orders_stock_is_released_once_however_often_it_is_retried():
    store = Store(5)
    order_id = uuid4()
    store.place(order_id, [2, 1])
    store.cancel(order_id)
    for _ in range(3):
        with pytest.raises(InvalidStateError):
            store.cancel(order_id)
    assert store.product().available == 5
    releases = [e for e in store.product_events if isinstance(e, StockReleased)]
    assert releases == [
        StockReleased(product_id=store.product_id, order_id=order_id, quantity=3)
    ]
