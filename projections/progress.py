"""The one function the write side may call: how far the read models have got."""

from __future__ import annotations

from commands_app.eventstore import checkpoint_of

from .models import Checkpoint
from .registry import projector_names


def is_projected(position: int) -> bool:
    """Return True once every registered projection has applied `position`."""
    target = checkpoint_of(position)
    if target is None:
        return False
    names = projector_names()
    rows = list(
        Checkpoint.objects.filter(name__in=names).values_list("tx_id", "position")
    )
    if len(rows) < len(names):
        return False
    return all((tx, pos) >= (target.tx_id, target.position) for tx, pos in rows)
