"""One runner per projection: a transaction-level advisory lock on the read database."""

from __future__ import annotations

import zlib

import psycopg.errors
from django.db import OperationalError, connections, transaction

from .base import READ_DB


def lock_key(name: str) -> int:
    """Return a stable 32-bit key for a projection's advisory lock."""
    return zlib.crc32(f"projection:{name}".encode())


def projection_lock(name: str, *, timeout_seconds: float) -> bool:
    """Take the projection's lock until the current read transaction ends.

    Wait up to `timeout_seconds` for another runner's transaction (batches are
    short); return False if it is still held then.
    """
    connection = connections[READ_DB]
    assert connection.in_atomic_block, "the lock lives as long as a transaction"
    # Mostly free: one round trip; only a held lock costs the bounded wait.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock_key(name)])
        if cursor.fetchone()[0]:
            return True
    try:
        with transaction.atomic(using=READ_DB), connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, true)",
                [f"{max(1, int(timeout_seconds * 1000))}ms"],
            )
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(name)])
            cursor.execute("SELECT set_config('lock_timeout', '0', true)")
    except OperationalError as exc:
        if isinstance(exc.__cause__, psycopg.errors.LockNotAvailable):
            return False
        raise
    return True
