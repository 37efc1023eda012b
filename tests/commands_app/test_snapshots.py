"""Product snapshots: loading from a snapshot gives the product replaying gives."""

from __future__ import annotations

from uuid import uuid4

import pytest
from django.db import connection, transaction

from commands_app import eventstore, snapshots
from commands_app.domain.product import Product
from commands_app.eventstore import NewEvents

from .given import placed, product, registered, reserved

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def place(product_id) -> Product:
    """Reserve one unit for a new order, as place-order's transaction does."""
    current = snapshots.load_products([product_id])[product_id]
    current.reserve(order_id=uuid4(), quantity=1)
    append_with_snapshot(current)
    return current


def append_with_snapshot(current: Product) -> None:
    with transaction.atomic():
        eventstore.append(
            [NewEvents(current.stream, current.version, tuple(current.pending_events))],
            metadata={},
        )
        snapshots.save_due([current])


def stored_snapshot(stream: str) -> tuple[int, int] | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT version, schema FROM stream_snapshots WHERE stream_id = %s",
            [stream],
        )
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1])


def replayed(product_id) -> Product:
    stream = f"product-{product_id}"
    events = eventstore.load_streams([stream])[stream]
    return Product.from_events(product_id, events)


def test_a_snapshot_plus_later_events_equals_the_whole_stream_replayed():
    registration = registered(stock=500)
    events = [registration] + [
        reserved(registration, uuid4(), 1 + i % 3) for i in range(20)
    ]
    whole = product(*events)
    early = product(*events[:8])
    rebuilt = Product.from_snapshot(
        registration.product_id, early.version, early.snapshot(), events[8:]
    )
    assert rebuilt == whole
    assert rebuilt.version == whole.version == 21


def test_a_snapshot_is_stored_every_few_events_in_the_appending_transaction():
    registration = registered(stock=1000)
    with transaction.atomic():
        eventstore.append(
            [NewEvents(f"product-{registration.product_id}", 0, (registration,))],
            metadata={},
        )
    stream = f"product-{registration.product_id}"
    for _ in range(snapshots.SNAPSHOT_EVERY - 2):
        place(registration.product_id)
    assert stored_snapshot(stream) is None
    place(registration.product_id)
    expected = (snapshots.SNAPSHOT_EVERY, Product.SNAPSHOT_SCHEMA)
    assert stored_snapshot(stream) == expected
    for _ in range(5):
        place(registration.product_id)
    loaded = snapshots.load_products([registration.product_id])[registration.product_id]
    assert loaded.snapshot_version == snapshots.SNAPSHOT_EVERY
    assert loaded == replayed(registration.product_id)
    assert loaded.available == 1000 - (snapshots.SNAPSHOT_EVERY + 4)


def test_a_snapshot_of_another_format_is_ignored():
    registration = registered(stock=10)
    stream = f"product-{registration.product_id}"
    with transaction.atomic():
        eventstore.append([NewEvents(stream, 0, (registration,))], metadata={})
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO stream_snapshots (stream_id, version, schema, state) "
            "VALUES (%s, 1, %s, '{\"bogus\": true}')",
            [stream, Product.SNAPSHOT_SCHEMA + 1],
        )
    loaded = snapshots.load_products([registration.product_id])[registration.product_id]
    assert loaded == replayed(registration.product_id)
    assert loaded.available == 10


def test_a_first_format_snapshot_loads_without_its_reservations_then_is_replaced():
    registration = registered(stock=1000)
    stream = f"product-{registration.product_id}"
    with transaction.atomic():
        eventstore.append([NewEvents(stream, 0, (registration,))], metadata={})
    for _ in range(snapshots.SNAPSHOT_EVERY - 1):
        place(registration.product_id)
    # As schema 1 stored it: the same fields, and every open reservation.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE stream_snapshots SET schema = 1, state = state || "
            "jsonb_build_object('reserved_for', jsonb_build_object(%s, 1)) "
            "WHERE stream_id = %s",
            [str(uuid4()), stream],
        )
    assert stored_snapshot(stream) == (snapshots.SNAPSHOT_EVERY, 1)
    loaded = snapshots.load_products([registration.product_id])[registration.product_id]
    assert loaded == replayed(registration.product_id)
    assert loaded.available == 1000 - (snapshots.SNAPSHOT_EVERY - 1)
    place(registration.product_id)
    expected = (snapshots.SNAPSHOT_EVERY + 1, Product.SNAPSHOT_SCHEMA)
    assert stored_snapshot(stream) == expected
    again = snapshots.load_products([registration.product_id])[registration.product_id]
    assert again.snapshot_version == snapshots.SNAPSHOT_EVERY + 1
    assert again == replayed(registration.product_id)


def test_one_load_returns_products_and_the_events_of_other_streams():
    registration = registered(stock=10)
    product_stream = f"product-{registration.product_id}"
    order_placed = placed(uuid4(), [(registration, 1)])
    order_stream = f"order-{order_placed.order_id}"
    with transaction.atomic():
        eventstore.append(
            [
                NewEvents(product_stream, 0, (registration,)),
                NewEvents(order_stream, 0, (order_placed,)),
            ],
            metadata={},
        )
    missing = f"order-{uuid4()}"
    products, others = snapshots.load(
        [registration.product_id], streams=[order_stream, missing]
    )
    assert products == {registration.product_id: replayed(registration.product_id)}
    assert others == {order_stream: [order_placed], missing: []}


def test_a_lost_race_stores_no_snapshot():
    registration = registered(stock=1000)
    stream = f"product-{registration.product_id}"
    with transaction.atomic():
        eventstore.append([NewEvents(stream, 0, (registration,))], metadata={})
    for _ in range(snapshots.SNAPSHOT_EVERY - 2):
        place(registration.product_id)
    stale = snapshots.load_products([registration.product_id])[registration.product_id]
    place(registration.product_id)
    stale.reserve(order_id=uuid4(), quantity=1)
    with pytest.raises(eventstore.ConcurrencyError):
        append_with_snapshot(stale)
    loaded = snapshots.load_products([registration.product_id])[registration.product_id]
    assert loaded == replayed(registration.product_id)
