"""Announce commands that every projection has applied.

The lowest checkpoint over all projections only grows (per projection, the
checkpoint does). A mark row remembers how far it was announced; in each
catch-up round's transaction, the mark moves to the new lowest checkpoint and
the positions of the events written by a command in between are collected
(from the events the round read when they cover the stretch, else read again).
After the commit they are sent with the `projections.signals.projected` signal
(the write side pushes "projected" for the commands whose last event is among
them). A projection that runs behind holds
the lowest checkpoint back, and triggers the announcement when it catches up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connections, transaction

from commands_app import eventstore
from commands_app.eventstore import Position, RecordedEvent

from . import signals
from .base import READ_DB
from .models import Checkpoint, ProjectedMark
from .registry import projector_names

READ_LIMIT = 1000

# Lock the mark, move it forward to the given checkpoint if it is behind, and
# return where it was: one round trip; no row back means nothing to announce.
_MOVE_MARK = """
WITH previous AS (
    SELECT tx_id, position FROM read_projected_mark WHERE id = 1 FOR UPDATE
)
UPDATE read_projected_mark AS mark
SET tx_id = %(tx_id)s, position = %(position)s
FROM previous
WHERE mark.id = 1 AND (previous.tx_id, previous.position) < (%(tx_id)s, %(position)s)
RETURNING previous.tx_id, previous.position
"""


def lowest_checkpoint() -> Position | None:
    """Return the lowest checkpoint over all projections (None if one is missing)."""
    names = projector_names()
    rows = list(
        Checkpoint.objects.filter(name__in=names).values_list("tx_id", "position")
    )
    if len(rows) < len(names):
        return None
    return min(Position(tx, pos) for tx, pos in rows)


def ensure_mark() -> None:
    """Create the mark row at the start of the event store if it is missing."""
    with connections[READ_DB].cursor() as cursor:
        cursor.execute(
            "INSERT INTO read_projected_mark (id, tx_id, position) "
            "VALUES (1, 0, 0) ON CONFLICT DO NOTHING"
        )


def move_mark(low: Position) -> Position | None:
    """Move the mark up to `low` in the current transaction; return where it was.

    Return None when the mark is already there (nothing new to announce).
    """
    for _ in range(2):
        with connections[READ_DB].cursor() as cursor:
            cursor.execute(_MOVE_MARK, {"tx_id": low.tx_id, "position": low.position})
            row = cursor.fetchone()
            if row is not None:
                return Position(row[0], row[1])
            cursor.execute("SELECT 1 FROM read_projected_mark WHERE id = 1")
            if cursor.fetchone() is not None:
                return None
        ensure_mark()
    return None


def lock_mark() -> Position:
    """Lock the mark until the current transaction ends; return it."""
    for _ in range(2):
        with connections[READ_DB].cursor() as cursor:
            cursor.execute(
                "SELECT tx_id, position FROM read_projected_mark "
                "WHERE id = 1 FOR UPDATE"
            )
            row = cursor.fetchone()
        if row is not None:
            return Position(row[0], row[1])
        ensure_mark()
    raise RuntimeError("the projected mark row is missing")


def announce_in_round(
    checkpoints: dict[str, Position] | None,
    start: Position,
    read: Sequence[RecordedEvent],
) -> list[int]:
    """Move the mark to the lowest checkpoint; return the command positions passed.

    Runs in a round's transaction. `checkpoints` are every projection's, when
    the round holds every projection's lock (nobody else can move them): one
    statement then. Otherwise (None) they are read under the mark's lock, so
    that of two runners the one that takes it second sees what the first
    committed. `read` is what the round read from the event store after
    `start`, in reader order: when it covers the stretch between the old mark
    and the new one, the stretch is not read again.
    """
    assert connections[READ_DB].in_atomic_block, "the mark moves with its round"
    if checkpoints is not None and len(checkpoints) == len(projector_names()):
        low = min(checkpoints.values())
        previous = move_mark(low)
    else:
        previous = lock_mark()
        lowest = lowest_checkpoint()
        if lowest is None or lowest <= previous:
            return []
        low = lowest
        ProjectedMark.objects.filter(pk=1).update(
            tx_id=low.tx_id, position=low.position
        )
    if previous is None:
        return []
    if previous < start or not read or read[-1].reader_position < low:
        return list(command_positions_between(previous, low))
    return [
        event.position
        for event in read
        if previous < event.reader_position <= low and event.metadata.get("command_id")
    ]


def announce_projected() -> list[int]:
    """Announce newly projected events (`projected`); return their positions."""
    with transaction.atomic(using=READ_DB):
        positions = announce_in_round(None, Position(), ())
    notify_projected(positions)
    return positions


def notify_projected(positions: list[int]) -> None:
    """Send projected positions with the `projected` signal (after the commit)."""
    if not positions:
        return
    # Pushes are hints; the status endpoint is the truth.
    signals.send(signals.projected, "projected", positions=positions)


def command_positions_between(after: Position, upto: Position) -> Iterable[int]:
    """Yield positions of command-written events in (after, upto], reader order."""
    cursor = after
    while True:
        events = eventstore.read_after(cursor, limit=READ_LIMIT)
        inside = [event for event in events if event.reader_position <= upto]
        for event in inside:
            if event.metadata.get("command_id"):
                yield event.position
        if len(inside) < READ_LIMIT:
            return
        cursor = inside[-1].reader_position
