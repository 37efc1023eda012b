"""Past states folded from events: equal to the read model now, and at every version."""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from django.db import connection, transaction

from commands_app import eventstore, snapshots
from commands_app.domain.events import (
    Address,
    Event,
    OrderCancelled,
    OrderRefunded,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRequested,
    event_to_data,
)
from commands_app.eventstore import NewEvents, RecordedEvent
from projections import past
from projections.base import Staged
from projections.models import OrderSummary
from projections.projectors import OrderSummaryProjector

from .conftest import ADDRESS, Store, seed_history, settle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

ROW_FIELDS = (
    "id",
    "customer_id",
    "status",
    "lines",
    "shipping_address",
    "total_cents",
    "currency",
    "refunded_cents",
    "created_at",
    "updated_at",
    "history",
    "position",
)


def declined_then_paid_then_refunded(store: Store, product_id: UUID) -> UUID:
    """Place an order, fail a payment, pay, cancel and refund it (8 events)."""
    order_id = store.order(product_id, quantity=2)
    stream = f"order-{order_id}"
    first, second = uuid4(), uuid4()
    store.append(
        stream,
        PaymentRequested(
            order_id=order_id, payment_id=first, amount_cents=2400, card_last4="0002"
        ),
    )
    store.append(
        stream,
        PaymentDeclined(
            order_id=order_id, payment_id=str(first), decline_code="card_declined"
        ),
    )
    store.append(
        stream,
        PaymentRequested(
            order_id=order_id, payment_id=second, amount_cents=2400, card_last4="4242"
        ),
    )
    store.append(
        stream,
        PaymentCaptured(
            order_id=order_id,
            payment_id=str(second),
            amount_cents=2400,
            card_last4="4242",
            gateway_reference="ch_2",
        ),
    )
    store.append(
        stream,
        OrderCancelled(
            order_id=order_id, reason="late", cancelled_by=7, refund_cents=2400
        ),
    )
    store.append(
        stream,
        OrderRefunded(
            order_id=order_id,
            refund_id="re_1",
            payment_id=str(second),
            amount_cents=2400,
            gateway_reference="re_1",
        ),
    )
    return order_id


def live_row(order_id: UUID) -> dict[str, Any]:
    return OrderSummary.objects.filter(id=order_id).values(*ROW_FIELDS).get()


def recorded_times(stream: str) -> list[datetime]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT recorded_at FROM events WHERE stream_id = %s ORDER BY version",
            [stream],
        )
        return [row[0] for row in cursor.fetchall()]


def test_an_order_folded_from_its_events_equals_its_read_model_row(store) -> None:
    made = seed_history(store)
    refunded = declined_then_paid_then_refunded(store, made["mug"])
    settle("order_summary")
    for name in ("placed", "paid", "shipped", "cancelled"):
        state = past.order_as_of(made[name])
        assert state is not None
        assert state.state == live_row(made[name]), name
    state = past.order_as_of(refunded)
    assert state is not None
    assert state.state == live_row(refunded)
    assert (state.version, state.state["status"]) == (7, "cancelled")
    assert state.state["refunded_cents"] == 2400


def test_an_order_as_of_each_version_is_the_state_after_that_many_events(
    store,
) -> None:
    product_id = store.product("MUG-1", stock=20)
    order_id = declined_then_paid_then_refunded(store, product_id)
    statuses = [
        "placed",
        "payment_pending",
        "placed",
        "payment_pending",
        "paid",
        "cancelled",
        "cancelled",
    ]
    times = recorded_times(f"order-{order_id}")
    for version, status in enumerate(statuses, start=1):
        state = past.order_as_of(order_id, version=version)
        assert state is not None
        assert (state.version, state.state["status"]) == (version, status)
        assert len(state.state["history"]) == version
        assert state.recorded_at == times[version - 1]
        assert state.state["updated_at"] == times[version - 1]
        assert state.state["created_at"] == times[0]
    before_refund = past.order_as_of(order_id, version=6)
    assert before_refund is not None
    assert before_refund.state["refunded_cents"] == 0


def test_a_version_beyond_the_head_folds_to_the_head(store) -> None:
    product_id = store.product("MUG-1")
    order_id = store.order(product_id)
    store.pay(order_id)
    state = past.order_as_of(order_id, version=99)
    assert state is not None
    assert (state.version, state.state["status"]) == (2, "paid")


def test_an_order_as_of_a_time_is_the_state_after_the_last_event_recorded_by_then(
    store,
) -> None:
    product_id = store.product("MUG-1")
    order_id = store.order(product_id)
    store.pay(order_id)
    store.ship(order_id)
    placed_at, paid_at, shipped_at = recorded_times(f"order-{order_id}")
    tick = timedelta(microseconds=1)
    assert past.order_as_of(order_id, at=placed_at - tick) is None
    cases = [
        (placed_at, 1, "placed"),
        (paid_at - tick, 1, "placed"),
        (paid_at, 2, "paid"),
        (shipped_at - tick, 2, "paid"),
        (shipped_at + timedelta(days=1), 3, "shipped"),
    ]
    for at, version, status in cases:
        state = past.order_as_of(order_id, at=at)
        assert state is not None
        assert (state.version, state.state["status"]) == (version, status), at
    assert past.order_as_of(uuid4(), at=shipped_at) is None
    assert past.order_as_of(uuid4(), version=1) is None


def test_an_order_as_of_a_time_stops_before_a_later_version_recorded_earlier(
    store,
) -> None:
    """A transaction that began before the previous version committed records an
    earlier time: the state as of a time is the run of versions from the first
    up to the first one recorded after it."""
    product_id = store.product("MUG-1")
    order_id = store.order(product_id)
    store.pay(order_id)
    store.ship(order_id)
    copy = f"order-{uuid4()}"
    early = datetime(2024, 1, 1, tzinfo=UTC)
    hours = {1: 1, 2: 3, 3: 2}  # version 3 recorded before version 2
    with transaction.atomic(), connection.cursor() as cursor:
        for version, hour in hours.items():
            cursor.execute(
                "INSERT INTO events (stream_id, version, type, data, metadata, "
                "recorded_at) SELECT %s, version, type, data, metadata, %s "
                "FROM events WHERE stream_id = %s AND version = %s",
                [copy, early + timedelta(hours=hour), f"order-{order_id}", version],
            )
    cases = [(0.0, 0), (1.0, 1), (2.5, 1), (3.0, 3), (30.0, 3)]
    for hours_later, expected in cases:
        at = early + timedelta(hours=hours_later)
        assert eventstore.stream_head(copy, until=at) == (3, expected), hours_later


def test_the_timeline_gives_each_event_the_state_after_it_what_changed_and_why(
    store,
) -> None:
    product_id = store.product("MUG-1")
    order_id = store.order(product_id)
    command_id = str(uuid4())
    store.append(
        f"order-{order_id}",
        PaymentCaptured(
            order_id=order_id,
            payment_id="pay-1",
            amount_cents=1200,
            card_last4="4242",
            gateway_reference="ch_1",
        ),
        command_id=command_id,
    )
    steps = past.order_timeline(order_id)
    assert [step.event.version for step in steps] == [1, 2]
    assert [(step.state or {}).get("status") for step in steps] == ["placed", "paid"]
    placed_changes = {name for name, _, _ in steps[0].changes}
    assert {"status", "lines", "shipping_address", "total_cents"} <= placed_changes
    assert steps[1].changes == [("status", "placed", "paid")]
    assert steps[1].metadata["command_id"] == command_id
    assert steps[1].metadata["user_id"] == 1
    # Each step's state is its own: later events do not change earlier ones.
    assert len((steps[0].state or {})["history"]) == 1


def place(product_id: UUID, *, restock: int = 0) -> None:
    """Reserve one unit for a new order (or restock), as a command's append does."""
    current = snapshots.load_products([product_id])[product_id]
    if restock:
        current.restock(restock)
    else:
        current.reserve(order_id=uuid4(), quantity=1)
    with transaction.atomic():
        eventstore.append(
            [NewEvents(current.stream, current.version, tuple(current.pending_events))],
            metadata={},
        )
        snapshots.save_due([current])


def test_a_product_from_kept_snapshots_equals_the_plain_fold_at_every_version(
    store,
) -> None:
    product_id = store.product("MUG-1", stock=500)
    for _ in range(2 * snapshots.SNAPSHOT_EVERY + 5):
        place(product_id)
    place(product_id, restock=7)
    head = 2 * snapshots.SNAPSHOT_EVERY + 7
    kept = snapshots.kept_snapshot(product_id, version=head)
    assert kept is not None
    assert kept[0] == 2 * snapshots.SNAPSHOT_EVERY
    assert snapshots.kept_snapshot(product_id, version=kept[0] - 1) is not None
    for version in range(1, head + 1):
        fast = past.product_as_of(product_id, version=version)
        plain = past.product_as_of(product_id, version=version, use_snapshots=False)
        assert fast is not None
        assert fast == plain, version
        assert fast.version == version
    now = past.product_as_of(product_id)
    assert now is not None
    assert now.state["available"] == 500 - (2 * snapshots.SNAPSHOT_EVERY + 5) + 7
    assert past.product_as_of(uuid4()) is None


def test_a_kept_snapshot_at_the_version_asked_still_gives_that_events_time(
    store,
) -> None:
    product_id = store.product("MUG-1", stock=50)
    for _ in range(snapshots.SNAPSHOT_EVERY):
        place(product_id)
    version = snapshots.SNAPSHOT_EVERY
    available = 50 - (version - 1)
    assert snapshots.kept_snapshot(product_id, version=version) == (
        version,
        {
            "sku": "MUG-1",
            "name": "Product MUG-1",
            "price_cents": 1200,
            "available": available,
        },
    )
    state = past.product_as_of(product_id, version=version)
    assert state is not None
    assert state.state["available"] == available
    assert state.recorded_at == recorded_times(f"product-{product_id}")[version - 1]


# --- The fold knows every row the order summary projector stages ---------------------


SIMPLE = {int: 1, bool: False, str: "x", Address: ADDRESS}


def example(hint: Any) -> Any:
    """Return a value of the annotated type, for building any event."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return example(next(a for a in typing.get_args(hint) if a is not type(None)))
    if origin is tuple:
        return ()
    if hint is UUID:
        return uuid4()
    if hint in SIMPLE:
        return SIMPLE[hint]
    if dataclasses.is_dataclass(hint):
        return build(hint)
    raise TypeError(f"no example for {hint!r}")


def build(cls: Any) -> Any:
    hints = typing.get_type_hints(cls)
    return cls(
        **{f.name: example(hints[f.name]) for f in dataclasses.fields(cls) if f.init}
    )


def test_every_row_kind_the_order_summary_projector_stages_is_folded() -> None:
    projector = OrderSummaryProjector()
    for event_class, handler in OrderSummaryProjector.handlers.items():
        event: Event = build(event_class)
        recorded = RecordedEvent(
            position=1,
            tx_id=1,
            stream_id="order-x",
            version=1,
            type=event.type_name,
            data=event_to_data(event),
            metadata={},
            recorded_at=datetime.now(UTC),
        )
        projector.staged = Staged()
        getattr(projector, handler)(event, recorded)
        unknown = projector.staged.kinds() - past.ORDER_ROW_KINDS
        assert not unknown, (
            f"{event_class.__name__} stages {sorted(unknown)}: fold them in "
            "projections/past.py (_order_step) and add them to ORDER_ROW_KINDS"
        )
