"""Orders in the real event store, handed back as the effects mechanism sees them.

`store` appends an order's events in the current transaction and returns them as
RecordedEvents; `later` builds a RecordedEvent of a type that has no domain class
(yet), for effects written by type name.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from commands_app import eventstore
from commands_app.domain.events import (
    Address,
    OrderCancelled,
    OrderEvent,
    OrderLine,
    OrderPaid,
    OrderPlaced,
    OrderShipped,
    event_to_data,
)
from commands_app.domain.order import order_stream
from commands_app.eventstore import NewEvents, RecordedEvent

ADDRESS = Address(
    name="Alice Martin",
    line1="1 rue de Rivoli",
    city="Paris",
    postal_code="75001",
    country="FR",
)
MUG = OrderLine(
    product_id=UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7"),
    sku="MUG-001",
    name="Stoneware mug",
    quantity=2,
    unit_price_cents=1200,
)
PEN = OrderLine(
    product_id=UUID("1d0f3e51-63a4-4b8e-8f53-3f2f0f1a9b77"),
    sku="PEN-001",
    name="Fountain pen",
    quantity=1,
    unit_price_cents=4550,
)


def placed(customer_id: int, order_id: UUID | None = None) -> OrderPlaced:
    lines = (MUG, PEN)
    return OrderPlaced(
        order_id=order_id or uuid4(),
        customer_id=customer_id,
        lines=lines,
        shipping_address=ADDRESS,
        total_cents=sum(line.total_cents for line in lines),
        currency="EUR",
    )


def paid(order: OrderPlaced) -> OrderPaid:
    return OrderPaid(
        order_id=order.order_id,
        amount_cents=order.total_cents,
        payment_id="ch_test",
        card_last4="4242",
    )


def shipped(order: OrderPlaced, tracking_number: str = "1Z999AA1") -> OrderShipped:
    return OrderShipped(order_id=order.order_id, tracking_number=tracking_number)


def cancelled(order: OrderPlaced, *, by: int, refund_cents: int = 0) -> OrderCancelled:
    return OrderCancelled(
        order_id=order.order_id,
        reason="Changed my mind",
        cancelled_by=by,
        refund_cents=refund_cents,
    )


def store(
    events: Sequence[OrderEvent],
    *,
    after: int = 0,
    metadata: dict[str, Any] | None = None,
) -> list[RecordedEvent]:
    """Append `events` of one order after version `after`; return them as recorded."""
    stream = order_stream(events[0].order_id)
    meta = metadata or {}
    batch = NewEvents(stream, after, tuple(events))
    positions = eventstore.append([batch], metadata=meta)
    now = datetime.now(UTC)
    return [
        RecordedEvent(
            position=position,
            tx_id=0,
            stream_id=stream,
            version=after + index,
            type=event.type_name,
            data=event_to_data(event),
            metadata=meta,
            recorded_at=now,
        )
        for index, (position, event) in enumerate(
            zip(positions, events, strict=True), 1
        )
    ]


def later(
    order_id: UUID, type_name: str, version: int, data: dict[str, Any]
) -> RecordedEvent:
    """Return an event of `type_name` as recorded at `version` (not stored)."""
    return RecordedEvent(
        position=10_000 + version,
        tx_id=0,
        stream_id=order_stream(order_id),
        version=version,
        type=type_name,
        data={"order_id": str(order_id), **data},
        metadata={},
        recorded_at=datetime.now(UTC),
    )
