"""The one interface the write side may call: how far the read models have got."""

from __future__ import annotations

from commands_app.eventstore import checkpoint_of

from .models import Checkpoint
from .registry import projector_names


def is_projected(position: int) -> bool:
    """Return True once every registered projection has applied `position`."""
    applied = applied_by(position)
    return bool(applied) and all(applied.values())


def applied_by(position: int) -> dict[str, bool]:
    """Return, per registered projection, whether it has applied `position`.

    A projection has applied an event once its checkpoint, in reader order
    (transaction id, position), is at or past the event's. An unknown
    position, or a projection without a checkpoint yet, says False.
    """
    names = projector_names()
    target = checkpoint_of(position)
    if target is None:
        return dict.fromkeys(names, False)
    reached = {
        name: (tx_id, pos) >= (target.tx_id, target.position)
        for name, tx_id, pos in Checkpoint.objects.filter(name__in=names).values_list(
            "name", "tx_id", "position"
        )
    }
    return {name: reached.get(name, False) for name in names}
