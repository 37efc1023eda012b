"""Hot statements (a token, an accept, an append): bound on the server, prepared.

Django's own cursors bind parameters on the client, so PostgreSQL parses and
plans every statement anew, and the ORM builds its SQL anew for each query
(for the token lookup, 0.6 ms of CPU more than running it). A plain psycopg
cursor on Django's connection (so in its transaction) runs a fixed statement
prepared (`prepare_threshold` in the database OPTIONS; None there turns
preparing off, e.g. behind a transaction-mode pooler). Django's checks and
error translation are kept; when Django logs queries (DEBUG,
CaptureQueriesContext) or has execute_wrapper hooks, its cursor wrapper runs
around this cursor as around its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from django.db import connections


def fetch_one(alias: str, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """Run `sql` on database `alias`, prepared; return its first row or None."""
    rows = fetch_all(alias, sql, params)
    return rows[0] if rows else None


def fetch_all(alias: str, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run `sql` on database `alias`, prepared; return its rows."""
    db = connections[alias]
    db.ensure_connection()
    cursor = psycopg.Cursor(db.connection)
    if db.queries_logged or db.execute_wrappers:
        # The stubs want a CursorWrapper; Django wraps the driver's cursor.
        wrap = db.make_debug_cursor if db.queries_logged else db.make_cursor
        with wrap(cursor) as wrapped:  # type: ignore[arg-type]
            wrapped.execute(sql, params)
            return list(wrapped.fetchall())
    db.validate_no_broken_transaction()
    with cursor, db.wrap_database_errors:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall()
