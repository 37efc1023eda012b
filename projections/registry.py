"""The registered projectors, by name."""

from __future__ import annotations

PROJECTOR_NAMES: tuple[str, ...] = ()


def projector_names() -> tuple[str, ...]:
    return PROJECTOR_NAMES
