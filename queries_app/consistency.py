"""Consistency tokens: how far a read model has got, and waiting for a position.

Projections apply events in reader order, (transaction id, position), not in
position order: positions are handed out at insert and transactions commit in any
order, so a checkpoint at position 9 may not yet include position 7 (its
transaction committed later, with a higher id). A projection has applied event N
exactly when its checkpoint (tx_id, position) >= (tx_N, N).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connections, router

from projections.models import Checkpoint

from .errors import PositionBeyondHeadError

POLL_FIRST_SECONDS = 0.01
POLL_MAX_SECONDS = 0.1


@dataclass(frozen=True, order=True)
class ReadPoint:
    """A place in reader order: (transaction id, position)."""

    tx_id: int = 0
    position: int = 0


def reflected_point(names: Sequence[str]) -> ReadPoint:
    """Return the point every projection in `names` has reached (one query).

    That is the least checkpoint in reader order; a projection without a
    checkpoint has applied nothing. Its position is a valid token: every one of
    these projections has applied the event at that position.

    Every read request asks this, so the query is written out: building it
    with the ORM cost more CPU than running it.
    """
    with connections[router.db_for_read(Checkpoint)].cursor() as cursor:
        cursor.execute(
            f"SELECT tx_id, position FROM {Checkpoint._meta.db_table} "  # noqa: S608 -- the model's table
            "WHERE name = ANY(%s)",
            [list(names)],
        )
        points = [ReadPoint(tx_id, position) for tx_id, position in cursor.fetchall()]
    if len(points) < len(set(names)):
        return ReadPoint()
    return min(points)


def event_point(position: int) -> ReadPoint | None:
    """Return the reader point of the committed event at `position`, if visible.

    This single primary-key lookup is the one place where the read API touches
    the write database. It cannot be avoided with the read database alone: a
    checkpoint's position says nothing about smaller positions whose
    transactions committed later (positions are handed out at insert, not at
    commit), so deciding whether event N is applied needs N's transaction id.
    It reads one row of the event store's index, never event data.

    With the two databases on two servers this is one round trip to the write
    server; the transaction ids it compares are the write server's on both
    sides (checkpoints store the events' ids), never the read server's own. A
    read without `min_position` never comes here, so only reads that carry a
    token depend on the write server being up.
    """
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT tx_id::text::bigint FROM events WHERE position = %s", [position]
        )
        row = cursor.fetchone()
    return None if row is None else ReadPoint(int(row[0]), position)


def position_applied(names: Sequence[str], position: int) -> bool:
    """Return True once every projection in `names` has applied `position`.

    A position with no visible event (not committed yet, or never used) is not
    applied, so the caller waits and then says it is behind; it never guesses.
    """
    if position <= 0:
        return True
    target = event_point(position)
    return target is not None and reflected_point(names) >= target


def store_head() -> int:
    """Return the highest committed position of the event store (0 if empty).

    Like `event_point`, one index lookup on the write database; it is asked
    only when a `min_position` is not applied yet.
    """
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT coalesce(max(position), 0) FROM events")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


PositionApplied = Callable[[Sequence[str], int], bool]

_waits_lock = threading.Lock()
_waits: threading.BoundedSemaphore | None = None


def _wait_slots() -> threading.BoundedSemaphore:
    """Return the per-process limit on requests sleeping for a position."""
    global _waits
    with _waits_lock:
        if _waits is None:
            _waits = threading.BoundedSemaphore(settings.READ_MAX_CONCURRENT_WAITS)
        return _waits


def release_pooled_connections() -> None:
    """Give this thread's pooled database connections back while it sleeps.

    The web tier borrows connections from a pool smaller than its thread count
    (config/connections.py): a waiting read must not hold one between polls.
    Connections that are not pooled, or inside a transaction, stay.
    """
    for connection in connections.all(initialized_only=True):
        if getattr(connection, "pool", None) and not connection.in_atomic_block:
            connection.close()


def wait_seconds() -> float:
    """Return how long a read may wait for `min_position`."""
    return float(settings.READ_MIN_POSITION_WAIT_SECONDS)


def wait_for_position(
    names: Sequence[str],
    position: int,
    *,
    timeout: float | None = None,
    applied: PositionApplied | None = None,
    head: Callable[[], int] | None = None,
) -> bool:
    """Wait up to `timeout` seconds until `names` have applied `position`.

    Return whether they have. Sleeping requests hold a web thread, so only a
    bounded number wait at once; the others are answered after one check.
    With `head`, a position beyond it is refused at once: no committed
    command can have returned it, so waiting would only hold a slot.
    """
    check = applied or position_applied
    if check(names, position):
        return True
    if head is not None and position > (top := head()):
        raise PositionBeyondHeadError(min_position=position, head=top)
    slots = _wait_slots()
    if not slots.acquire(blocking=False):
        return False
    try:
        deadline = time.monotonic() + (wait_seconds() if timeout is None else timeout)
        pause = POLL_FIRST_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            release_pooled_connections()
            time.sleep(min(pause, left))
            if check(names, position):
                return True
            pause = min(pause * 2, POLL_MAX_SECONDS)
        return False
    finally:
        slots.release()
