"""Which copy of the read database a read request reads: a replica or the primary.

Projections write to the read database's primary (alias "read"). With
READ_REPLICA_URLS set, the read API answers from a streaming replica instead:
each request picks one (at random) and keeps it for every query it makes, the
checkpoint first and then the rows, so that `X-Read-Position` describes the very
rows it answered with. The checkpoint table replicates with the rows in the
same WAL, so a replica's checkpoint is exactly what that replica has applied.

A read with `min_position` that the chosen replica has not applied yet waits
for it up to READ_REPLICA_MAX_WAIT_SECONDS, then falls back to the primary,
where the usual wait (READ_MIN_POSITION_WAIT_SECONDS) and the documented 503
apply; so does a read whose replica cannot be reached, and that replica is
then left out of this process's choices for READ_REPLICA_RETRY_SECONDS (so
that a dead replica costs one slow request per process and period, not every
request a connection timeout). Read-your-writes thus
holds whatever a replica's lag, and a lagging replica costs the primary only
the reads that need a position it lacks.

The choice lives in a context variable for the duration of the request; the
database router (config/db_router.py) sends the projection models' reads there.
Outside a read request (projection runners, commands, the web tier, the admin)
nothing is pinned and every read of a projection model goes to "read".
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar

from django.conf import settings

PRIMARY = "read"

_pinned: ContextVar[str | None] = ContextVar("read_database_alias", default=None)


def pinned_alias() -> str | None:
    """Return the read database alias this request reads from, if one is pinned."""
    return _pinned.get()


def replica_aliases() -> list[str]:
    return list(getattr(settings, "READ_REPLICA_ALIASES", ()))


_failed_lock = threading.Lock()
_failed_until: dict[str, float] = {}


def choose() -> str:
    """Pick the copy a new read request reads: a replica, or the primary if none.

    Replicas that failed lately are skipped; if all did, the primary it is.
    """
    now = time.monotonic()
    with _failed_lock:
        aliases = [a for a in replica_aliases() if _failed_until.get(a, 0.0) <= now]
    return random.choice(aliases) if aliases else PRIMARY


def mark_failed(alias: str) -> None:
    """Leave `alias` out of `choose()` for READ_REPLICA_RETRY_SECONDS."""
    retry = float(getattr(settings, "READ_REPLICA_RETRY_SECONDS", 10.0))
    with _failed_lock:
        _failed_until[alias] = time.monotonic() + retry


def forget_failures() -> None:
    """Consider every replica healthy again (tests)."""
    with _failed_lock:
        _failed_until.clear()


def use(alias: str) -> None:
    """Read from `alias` for the rest of this request (inside `pinned`)."""
    _pinned.set(alias)


def is_replica(alias: str | None) -> bool:
    return alias is not None and alias != PRIMARY


@contextlib.contextmanager
def pinned(alias: str | None = None) -> Iterator[str]:
    """Pin the request's reads to `alias` (default: `choose()`); unpin after."""
    token = _pinned.set(alias or choose())
    try:
        yield _pinned.get() or PRIMARY
    finally:
        _pinned.reset(token)
