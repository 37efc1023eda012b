"""Set-based batches: the same rows as event by event, and replays change nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from itertools import pairwise

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands_app import eventstore
from commands_app.eventstore import RecordedEvent
from projections import rebuild
from projections.registry import PROJECTOR_NAMES, projector_class

from .conftest import Store, rows, seed_history, settle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

ONE_BY_ONE = "__one"
BATCH = "__batch"


@pytest.fixture
def shadows() -> Iterator[None]:
    """Give every projection empty tables for each way of applying events."""
    projectors = [
        projector_class(name)(suffix=suffix)
        for name in PROJECTOR_NAMES
        for suffix in (ONE_BY_ONE, BATCH)
    ]
    for projector in projectors:
        rebuild.create_shadow_tables(projector)
    try:
        yield
    finally:
        for projector in projectors:
            rebuild.drop_shadow_tables(projector)


def stored_events(store: Store, timeout: float = 30.0) -> list[RecordedEvent]:
    """Return every event the store wrote, once readers may see them all."""
    deadline = time.monotonic() + timeout
    while True:
        events = eventstore.read_after(eventstore.Position(), limit=10_000)
        if len(events) >= len(store.positions) or time.monotonic() > deadline:
            return events
        time.sleep(0.05)


def one_by_one(name: str, events: list[RecordedEvent]) -> dict[str, list]:
    projector = projector_class(name)(suffix=ONE_BY_ONE)
    with transaction.atomic(using="read"):
        for recorded in events:
            projector.apply(recorded)
    return rows(name, ONE_BY_ONE)


def in_batches(name: str, *batches: list[RecordedEvent]) -> dict[str, list]:
    projector = projector_class(name)(suffix=BATCH)
    for batch in batches:
        with transaction.atomic(using="read"):
            projector.apply_batch(batch)
    return rows(name, BATCH)


def clear(suffix: str) -> None:
    with connections["read"].cursor() as cursor:
        for name in PROJECTOR_NAMES:
            for table in projector_class(name).tables:
                cursor.execute(f'TRUNCATE "{table}{suffix}"')


def test_a_batch_gives_the_same_rows_as_its_events_one_by_one(store, shadows):
    # In one batch: products registered then reserved, orders placed, paid and
    # shipped, a cancellation on the day of the sales, a restock, an unknown type.
    seed_history(store)
    events = stored_events(store)
    settle()

    for name in PROJECTOR_NAMES:
        expected = one_by_one(name, events)
        assert any(expected.values()), name
        assert in_batches(name, events) == expected, name
        assert rows(name) == expected, name  # the live runner's rows


def test_an_order_placed_paid_and_shipped_in_one_batch_has_its_whole_timeline(
    store, shadows
):
    mug = store.product("MUG-1", stock=20)
    order = store.order(mug, quantity=2)
    store.pay(order, amount=2400)
    store.ship(order)
    events = stored_events(store)

    (summary,) = in_batches("order_summary", events)["read_orders"]
    row = dict(zip(column_names("read_orders"), summary, strict=True))
    history = json.loads(row["history"])  # jsonb comes back as text
    assert row["status"] == "shipped"
    assert [entry["event"] for entry in history] == ["placed", "paid", "shipped"]
    assert [entry["position"] for entry in history] == [
        event.position for event in events if event.stream_id == f"order-{order}"
    ]
    assert row["position"] == events[-1].position
    assert row["updated_at"] == events[-1].recorded_at
    (product,) = in_batches("product_catalogue", events)["read_products"]
    assert dict(zip(column_names("read_products"), product, strict=True))[
        "available"
    ] == (20 - 2)


def test_a_day_with_a_cancellation_in_the_same_batch_counts_it_once(store, shadows):
    mug = store.product("MUG-1", stock=20)
    store.order(mug, quantity=2)
    cancelled = store.order(mug, quantity=3)
    store.cancel(cancelled, mug, quantity=3)
    store.cancel(cancelled, mug, quantity=3)  # a second cancellation changes nothing
    events = stored_events(store)

    tables = in_batches("daily_sales", events)
    assert tables == one_by_one("daily_sales", events)
    (day,) = tables["read_daily_sales"]
    values = dict(zip(column_names("read_daily_sales"), day, strict=True))
    assert (values["orders"], values["units"], values["cancelled_orders"]) == (1, 2, 1)
    assert values["revenue_cents"] == 2 * 1200


def test_a_replayed_or_overlapping_batch_changes_nothing(store, shadows):
    seed_history(store)
    events = stored_events(store)
    half = len(events) // 2

    for name in PROJECTOR_NAMES:
        expected = one_by_one(name, events)
        assert in_batches(name, events[:half], events[half - 3 :]) == expected, name
        assert in_batches(name, events, events[2:half]) == expected, name


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_split_into_batches_with_replays_gives_the_same_rows(store, shadows, data):
    if not store.positions:
        seed_history(store)
    events = stored_events(store)
    cuts = sorted(
        data.draw(st.sets(st.integers(1, len(events) - 1), max_size=len(events) // 2))
    )
    bounds = [0, *cuts, len(events)]
    batches = []
    for start, end in pairwise(bounds):
        batches.append(events[start:end])
        if data.draw(st.booleans()):  # replay a stretch already applied
            replay_start = data.draw(st.integers(0, end - 1))
            batches.append(events[replay_start:end])
    clear(ONE_BY_ONE)
    clear(BATCH)

    for name in PROJECTOR_NAMES:
        assert in_batches(name, *batches) == one_by_one(name, events), name


def test_a_batch_takes_the_same_statements_whatever_its_size(store, shadows):
    def history(orders: int) -> None:
        product = store.product(f"SKU-{orders}", stock=1000)
        for _ in range(orders):
            order = store.order(product)
            store.pay(order)
            store.cancel(order, product)

    history(1)
    small = stored_events(store)
    history(20)
    large = stored_events(store)[len(small) :]

    for name in PROJECTOR_NAMES:
        projector = projector_class(name)(suffix=BATCH)
        counts = []
        for batch in (small, large):
            with (
                transaction.atomic(using="read"),
                CaptureQueriesContext(connections["read"]) as queries,
            ):
                projector.apply_batch(batch)
            counts.append(len(queries))
        assert counts[0] == counts[1] <= 2 * len(projector.tables), name


def column_names(table: str) -> list[str]:
    with connections["read"].cursor() as cursor:
        cursor.execute(f'SELECT * FROM "{table}{BATCH}" LIMIT 0')
        return [column.name for column in cursor.description]


@pytest.mark.usefixtures("fast_retries")
def test_an_event_failing_in_a_rebuild_stops_it_naming_the_event(store, monkeypatch):
    from projections.projectors import OrderSummaryProjector

    seed_history(store)
    settle()
    live = {name: rows(name) for name in PROJECTOR_NAMES}
    paid = [
        recorded.position
        for recorded in stored_events(store)
        # Stored as order.paid.v1, read as a captured payment (its upcaster).
        if recorded.type == "order.payment_captured.v1"
    ]

    def fail(self, event, recorded):
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(OrderSummaryProjector, "on_payment_captured", fail)
    with pytest.raises(rebuild.RebuildError) as raised:
        rebuild.rebuild_many()

    assert f"order_summary: event {paid[0]} failed" in str(raised.value)
    assert "disk full" in str(raised.value)
    assert {name: rows(name) for name in PROJECTOR_NAMES} == live
    with connections["read"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_class WHERE relname LIKE %s", [r"%\_\_rebuild"]
        )
        assert cursor.fetchone()[0] == 0


@pytest.mark.usefixtures("fast_retries")
def test_a_rebuild_passes_over_a_discarded_event_that_does_not_decode(store):
    from projections.dead_letters import discard_dead_letters
    from projections.models import DeadLetter

    seed_history(store)
    order = store.order(store.product("SKU-P"))
    stream = f"order-{order}"
    store.versions[stream] += 1
    with transaction.atomic(), connections["default"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO events (stream_id, version, type, data, metadata) "
            "VALUES (%s, %s, 'order.paid.v1', %s::jsonb, '{}'::jsonb) "
            "RETURNING position",
            [stream, store.versions[stream], json.dumps({"order_id": str(order)})],
        )
        poison = cursor.fetchone()[0]
    settle()
    letters = DeadLetter.objects.filter(position=poison)
    assert {letter.projection for letter in letters} == {
        "order_summary",
        "customer_order_history",
    }

    with pytest.raises(rebuild.RebuildError, match=f"event {poison} failed"):
        rebuild.verify_many()

    discard_dead_letters([letter.pk for letter in letters])
    assert all(result.equal for result in rebuild.verify_many())
    live = {name: rows(name) for name in PROJECTOR_NAMES}
    rebuild.rebuild_many()
    assert {name: rows(name) for name in PROJECTOR_NAMES} == live
