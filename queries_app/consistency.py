"""Consistency tokens: waiting for a `min_position` to be applied.

Whether a position is applied, and how far the read models have got (the
`X-Read-Position` token), are the read side's published progress questions,
asked of `projections.progress` (`is_applied`, `reached`), the same ones the
write side's command status asks. This module bounds the wait: how long, and
how many requests may sleep at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from django.conf import settings

from api.waiting import release_pooled_connections
from projections.progress import is_applied

from .errors import PositionBeyondHeadError

POLL_FIRST_SECONDS = 0.01
POLL_MAX_SECONDS = 0.1

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
    `applied` replaces the published check, `progress.is_applied` (tests).
    """

    def check() -> bool:
        if applied is not None:
            return applied(names, position)
        return is_applied(position, projections=names)

    if check():
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
            if check():
                return True
            pause = min(pause * 2, POLL_MAX_SECONDS)
        return False
    finally:
        slots.release()
