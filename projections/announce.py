"""Announce commands that every projection has applied.

The lowest checkpoint over all projections only grows (per projection, the
checkpoint does). A mark row remembers how far it was announced; after each
batch, the events between the mark and the new lowest checkpoint are read and
the positions of those written by a command are passed to the callback named by
`settings.PROJECTIONS_ON_PROJECTED` (the write side pushes "projected" for the
commands whose last event is among them). A projection that runs behind holds
the lowest checkpoint back, and triggers the announcement when it catches up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import connections, transaction
from django.utils.module_loading import import_string

from commands_app import eventstore
from commands_app.eventstore import Checkpoint as Position

from .base import READ_DB
from .models import Checkpoint, ProjectedMark
from .registry import projector_names

logger = logging.getLogger(__name__)

READ_LIMIT = 1000


def lowest_checkpoint() -> Position | None:
    """Return the lowest checkpoint over all projections (None if one is missing)."""
    names = projector_names()
    rows = list(
        Checkpoint.objects.filter(name__in=names).values_list("tx_id", "position")
    )
    if len(rows) < len(names):
        return None
    return min(Position(tx, pos) for tx, pos in rows)


def announce_projected() -> list[int]:
    """Call the on-projected callback for newly projected events; return them."""
    with transaction.atomic(using=READ_DB):
        with connections[READ_DB].cursor() as cursor:
            cursor.execute(
                "INSERT INTO read_projected_mark (id, tx_id, position) "
                "VALUES (1, 0, 0) ON CONFLICT DO NOTHING"
            )
        mark = ProjectedMark.objects.select_for_update().get(pk=1)
        low = lowest_checkpoint()
        previous = Position(mark.tx_id, mark.position)
        if low is None or low <= previous:
            return []
        positions = list(command_positions_between(previous, low))
        mark.tx_id, mark.position = low.tx_id, low.position
        mark.save()
    if positions:
        try:
            callback: Callable[[list[int]], object] = import_string(
                settings.PROJECTIONS_ON_PROJECTED
            )
            callback(positions)
        except Exception:
            # Pushes are hints; the status endpoint is the truth.
            logger.warning("projected announcement dropped", exc_info=True)
    return positions


def command_positions_between(after: Position, upto: Position) -> Iterable[int]:
    """Yield positions of command-written events in (after, upto], reader order."""
    cursor = after
    while True:
        events = eventstore.read_after(cursor, limit=READ_LIMIT)
        inside = [event for event in events if event.checkpoint <= upto]
        for event in inside:
            if event.metadata.get("command_id"):
                yield event.position
        if len(inside) < READ_LIMIT:
            return
        cursor = inside[-1].checkpoint
