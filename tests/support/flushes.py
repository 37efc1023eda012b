"""Count the WAL flushes (fsyncs) that PostgreSQL made while a block ran.

`pg_stat_wal.wal_sync` counts every flush of the cluster. A backend reports its
counts when it goes idle (at most once a second) or when it ends, so the block's
own connections are closed before the count is read; the WAL writer's own
flushes (a few per second when commits do not wait) count as well.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import psycopg
from django.conf import settings
from django.db import connections


def _wal_syncs() -> int:
    params = settings.DATABASES["default"]
    with psycopg.connect(
        host=params["HOST"], port=params["PORT"], user=params["USER"],
        dbname=params["NAME"], autocommit=True,
    ) as conn:  # fmt: skip
        row = conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()
    assert row is not None
    return int(row[0])


class Count:
    value = 0


@contextlib.contextmanager
def flushes() -> Iterator[Count]:
    """Yield a Count whose value is the flushes made inside the block."""
    count = Count()
    connections.close_all()
    time.sleep(0.3)
    before = _wal_syncs()
    yield count
    connections.close_all()
    time.sleep(0.3)
    count.value = _wal_syncs() - before
