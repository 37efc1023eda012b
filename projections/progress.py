"""How far the read models have got: the one published "is this position applied?".

Both sides ask it here, and only here: the write side's command status
(`commands_app.status`, the `projected` flag of the API and of pushes) and the
read API's consistency (`queries_app.consistency`, `min_position` and the
`X-Read-Position` header).

Projections apply events in reader order, (transaction id, position), not in
position order: positions are handed out at insert and transactions commit in
any order, so a checkpoint at position 9 may not yet include position 7 (its
transaction committed later, with a higher id). A projection has applied event
N exactly when its checkpoint `Position` (tx_id, position) >= (tx_N, N). The
event's transaction id comes from the event store's read interface, on the
write database (`eventstore.position_of`); the checkpoints from the read
database, or the replica a read request is pinned to (the database router).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, router

from commands_app.eventstore import Position, last_position, position_of

from .models import Checkpoint
from .registry import projector_names

__all__ = ["Position", "applied_by", "is_applied", "reached", "store_head"]


def is_applied(position: int, *, projections: Sequence[str] | None = None) -> bool:
    """Return True once every projection in `projections` has applied `position`.

    `projections` defaults to every registered one. Position 0 (or less) is
    applied: there is nothing to wait for. A position with no visible event
    (not committed yet, or never used) is not applied, so a caller waits and
    then says it is behind; it never guesses.
    """
    if position <= 0:
        return True
    target = position_of(position)
    names = projector_names() if projections is None else projections
    return target is not None and reached(names) >= target


def reached(names: Sequence[str]) -> Position:
    """Return the position every projection in `names` has reached (one query).

    That is the least checkpoint in reader order; a projection without a
    checkpoint has applied nothing (and so do no projections at all). Its
    `position` is a valid token: every one of these projections has applied
    the event at that position.

    Every read request asks this, so the query is written out: building it
    with the ORM cost more CPU than running it.
    """
    with connections[router.db_for_read(Checkpoint)].cursor() as cursor:
        cursor.execute(
            f"SELECT tx_id, position FROM {Checkpoint._meta.db_table} "  # noqa: S608 -- the model's table
            "WHERE name = ANY(%s)",
            [list(names)],
        )
        points = [Position(tx_id, position) for tx_id, position in cursor.fetchall()]
    if not points or len(points) < len(set(names)):
        return Position()
    return min(points)


def applied_by(position: int) -> dict[str, bool]:
    """Return, per registered projection, whether it has applied `position`.

    The same rule as `is_applied`, one answer per projection (for the admin).
    An unknown position, or a projection without a checkpoint yet, says False.
    """
    names = projector_names()
    target = position_of(position)
    if target is None:
        return dict.fromkeys(names, False)
    reached_by = {
        name: Position(tx_id, pos) >= target
        for name, tx_id, pos in Checkpoint.objects.filter(name__in=names).values_list(
            "name", "tx_id", "position"
        )
    }
    return {name: reached_by.get(name, False) for name in names}


def store_head() -> int:
    """Return the highest position the event store has handed out (0 if none).

    Asked by the read API only when a `min_position` is not applied yet: a
    position beyond it is refused at once (no committed command returned it).
    """
    return last_position()
