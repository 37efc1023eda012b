"""The effects outbox: which events decide which effects, and their rows.

An effect is something to do outside the store (charge a card, refund, send an
e-mail, publish an integration event). It is decided by an event, so its row
is written by `schedule()` in the transaction that appends the event (the
event store calls it from `append`), and a `NOTIFY` on `CHANNEL` wakes the
relays at commit. `commands_app.effects` delivers the rows.

An effect kind is registered once, at start-up (`AppConfig.ready`):

    outbox.register(EffectKind(
        name="email",
        event_types=frozenset({"order.placed.v2", "order.shipped.v1"}),
        perform=lambda effect, event: notifications.send_for_event(event),
    ))

Effects of one kind for one stream (an order) are delivered in the order of
their events; `perform` may raise to be retried, and must be idempotent (the
effect's `idempotency_key` is stable across retries).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from api.prepared import fetch_all

from .domain.events import newest_type_name

if TYPE_CHECKING:
    from .eventstore import RecordedEvent
    from .models import Effect

CHANNEL = "effects"


def event_key(kind: str, position: int, data: dict[str, Any]) -> str:
    """Key an effect by its event: one effect of a kind per event."""
    return f"{kind}:event:{position}"


@dataclass(frozen=True)
class EffectKind:
    """A kind of effect: the event types that decide it and how to perform it.

    `key` names the effect for the other side's idempotency (default: the
    event's position); `applies` filters the events of those types (default:
    every one).
    """

    name: str
    event_types: frozenset[str]
    perform: Callable[[Effect, RecordedEvent], None]
    key: Callable[[str, int, dict[str, Any]], str] = event_key
    applies: Callable[[dict[str, Any]], bool] = lambda data: True


KINDS: dict[str, EffectKind] = {}


def register(kind: EffectKind) -> None:
    """Add (or replace) an effect kind."""
    KINDS[kind.name] = kind


def kinds_for(type_name: str) -> list[EffectKind]:
    """Return the kinds an event decides, by its type name or its newest one.

    A kind lists the newest type names; an event appended under an older name
    (by a writer not yet upgraded, domain/events.py `UPCASTERS`) decides the
    same effects, which read it upcast.
    """
    names = {type_name, newest_type_name(type_name)}
    return [kind for kind in KINDS.values() if names & kind.event_types]


@dataclass(frozen=True)
class Appended:
    """An event just inserted in the current transaction."""

    position: int
    stream_id: str
    type: str
    data: dict[str, Any]


# One statement and round trip: the rows, and a NOTIFY when any was new
# (PostgreSQL holds it until the commit, and drops it on rollback).
_INSERT_SQL = (
    "WITH inserted AS (INSERT INTO effects (kind, stream_id, event_position, "
    "idempotency_key, traceparent, status, attempts, last_error) "
    "SELECT kind, stream_id, event_position, idempotency_key, traceparent, "
    "'pending', 0, '' FROM jsonb_to_recordset(%s::jsonb) AS e(kind text, "
    "stream_id text, event_position bigint, idempotency_key text, traceparent text) "
    "ON CONFLICT (kind, idempotency_key) DO NOTHING RETURNING 1) "
    "SELECT pg_notify(%s, '') FROM (SELECT FROM inserted LIMIT 1) AS new"
)


def schedule(
    appended: Sequence[Appended], *, traceparent: str = "", using: str = "default"
) -> int:
    """Insert the effects the appended events decide; NOTIFY the relays on commit.

    Runs in the appending transaction: the effects commit with their events or
    not at all. Return how many rows were offered.
    """
    rows = [
        {
            "kind": kind.name,
            "stream_id": event.stream_id,
            "event_position": event.position,
            "idempotency_key": kind.key(kind.name, event.position, event.data),
            "traceparent": traceparent[:55],
        }
        for event in appended
        for kind in kinds_for(event.type)
        if kind.applies(event.data)
    ]
    if not rows:
        return 0
    fetch_all(using, _INSERT_SQL, [json.dumps(rows), CHANNEL])
    return len(rows)
