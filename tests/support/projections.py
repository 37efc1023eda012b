"""Keep the shared worker's projection runner off while a test runs its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections

from projections import runner
from projections.locks import lock_key
from projections.registry import projector_names


@contextmanager
def projections_held_here() -> Iterator[None]:
    """Let only this process apply events to the projections meanwhile.

    A worker of an earlier test may still be draining (or be woken by this
    test's commits) and would apply events behind the test's back. This takes
    every projection's advisory lock at session level on this process's read
    connection: its own runner takes the same keys again (re-entrant per
    session), any other runner waits, then gives up until its next run.
    """
    # PAUSE_LOCK first: every projector relay of a worker stays out entirely.
    keys = [runner.PAUSE_LOCK, *(lock_key(name) for name in projector_names())]
    with connections["read"].cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        yield
    finally:
        with connections["read"].cursor() as cursor:
            for key in keys:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
