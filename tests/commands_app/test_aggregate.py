"""The aggregate base and the order statuses: what a refactor must not change."""

from __future__ import annotations

import json
from uuid import UUID, uuid4

import pytest

from commands_app.domain.customer import Customer, customer_stream
from commands_app.domain.errors import InvalidStateError
from commands_app.domain.events import CustomerForgotten
from commands_app.domain.order import Order, OrderStatus, order_stream
from commands_app.domain.product import Product, product_stream

from .given import ALICE, order, placed, registered

pytestmark = [pytest.mark.unit]

ID = UUID("00000000-0000-4000-8000-000000000001")


def test_streams_keep_their_stored_names():
    assert order_stream(ID) == Order(id=ID).stream == f"order-{ID}"
    assert product_stream(ID) == Product(id=ID).stream == f"product-{ID}"
    assert customer_stream(7) == Customer(id=7).stream == "customer-7"


def test_loading_counts_stored_events_and_recording_keeps_new_ones_pending():
    forgotten = CustomerForgotten(customer_id=7)
    customer = Customer.from_events(7, [forgotten, forgotten])
    assert (customer.version, customer.pending_events) == (2, [])
    fresh = Customer.from_events(8, [])
    fresh.forget()
    assert fresh.forgotten
    assert fresh.version == 0
    assert fresh.pending_events == [CustomerForgotten(customer_id=8)]


def test_a_product_from_its_snapshot_folds_the_events_after_it():
    registration = registered(stock=5)
    state = Product.from_events(registration.product_id, [registration]).snapshot()
    product = Product.from_snapshot(registration.product_id, 4, state, [])
    product.restock(2)
    assert (product.version, product.snapshot_version, product.available) == (4, 4, 7)
    assert len(product.pending_events) == 1


def test_order_statuses_are_the_strings_stored_and_filtered_by():
    from queries_app.orders import STATUSES

    assert list(OrderStatus) == STATUSES
    assert json.dumps({"status": OrderStatus.PAYMENT_PENDING}) == (
        '{"status": "payment_pending"}'
    )
    assert f"{OrderStatus.PAID}" == "paid"


def test_a_refusal_names_the_status_as_before():
    loaded = order(placed(uuid4(), [(registered(), 1)]))
    loaded.cancel(reason="", cancelled_by=ALICE)
    with pytest.raises(InvalidStateError) as refusal:
        loaded.ship(tracking_number="TRK")
    assert json.dumps(refusal.value.as_dict()["message"]) == (
        '"A cancelled order cannot be shipped."'
    )
    assert json.dumps(refusal.value.details["status"]) == '"cancelled"'
