"""What the read side announces, for whoever listens (the write side pushes them).

Each signal is sent after the round's commit; a receiver that raises is logged
as a warning and the announcement dropped, as the round has committed (pushes
are hints; the APIs are the truth). The write side connects one receiver per
signal; one that raises stops the receivers after it for that announcement.
The write side connects its receivers in `commands_app.apps` (`ready()`), so
projections/ never imports it and the edge is an import the linter sees.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger(__name__)

# `positions`: the event positions, written by a command, that every projection
# has applied (the write side pushes "projected" for their commands).
projected = Signal()
# `lag`: per projection, `{name, lag_events, lag_seconds}` (staff dashboards);
# sent at most once a second over all projection workers.
lag_reported = Signal()
# `products`: `[{id, available, position}]`, each product whose catalogue stock
# a round changed, once, as committed (every shopper's socket).
stock_changed = Signal()


def send(signal: Signal, what: str, **kwargs: Any) -> bool:
    """Send `signal` to its receivers; log, never raise, a receiver's failure.

    Return False when a receiver raised (the announcement was dropped).
    """
    try:
        signal.send(sender=None, **kwargs)
    except Exception:
        logger.warning("%s announcement dropped", what, exc_info=True)
        return False
    return True
