"""The shadow tables of a rebuild: create, index, swap in, compare, drop.

Everything here is DDL or a whole-table read on the read database; what fills
the tables is in `replay.py`.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import connections

from ..base import READ_DB, Projector


def execute(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run one statement on the read database; return its rows, if any."""
    with connections[READ_DB].cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


def quote(name: str) -> str:
    return connections[READ_DB].ops.quote_name(name)


def create_shadow_tables(projector: Projector) -> None:
    """Create empty tables like the live ones (columns, defaults, indexes)."""
    drop_shadow_tables(projector)
    for table in projector.tables:
        execute(
            f"CREATE TABLE {quote(table + projector.suffix)} "
            f"(LIKE {quote(table)} INCLUDING ALL)"
        )


def defer_indexes(projector: Projector) -> list[str]:
    """Drop the shadow tables' non-unique indexes; return what creates them again.

    Building an index once over the filled table is cheaper than updating it
    row by row. Unique indexes stay: the upserts rely on them.
    """
    statements = []
    for table in projector.tables:
        rows = execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass AND NOT x.indisunique "
            "ORDER BY i.relname",
            [table + projector.suffix],
        )
        for name, definition in rows:
            execute(f"DROP INDEX {quote(name)}")
            statements.append(definition)
    return statements


def drop_shadow_tables(projector: Projector) -> None:
    for table in projector.tables:
        execute(f"DROP TABLE IF EXISTS {quote(table + projector.suffix)}")


def index_definitions(table: str) -> dict[str, str]:
    """Return index name → definition without the index and table names."""
    rows = execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass ORDER BY i.relname",
        [table],
    )
    return {
        name: re.sub(r"^(CREATE (?:UNIQUE )?INDEX) \S+ ON \S+", r"\1 ON", sql)
        for name, sql in rows
    }


def swap_tables(projector: Projector) -> None:
    """Replace the live tables by the shadow ones, keeping index names.

    Runs in the caller's transaction: renames take an exclusive lock on the live
    table for an instant, so readers wait rather than fail.
    """
    for table in projector.tables:
        shadow = table + projector.suffix
        live_names: dict[str, list[str]] = {}
        for name, definition in index_definitions(table).items():
            live_names.setdefault(definition, []).append(name)
        renames = [
            (name, live_names[definition].pop())
            for name, definition in index_definitions(shadow).items()
            if live_names.get(definition)
        ]
        execute(f"DROP TABLE {quote(table)}")
        execute(f"ALTER TABLE {quote(shadow)} RENAME TO {quote(table)}")
        for old, new in renames:
            execute(f"ALTER INDEX {quote(old)} RENAME TO {quote(new)}")


def checksum(table: str) -> str:
    """Return the row count and an md5 of every row's text, in a stable order."""
    rows = execute(
        "SELECT count(*)::text || ':' || md5(coalesce("  # noqa: S608 -- table quoted
        f"string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {quote(table)} t"
    )
    return str(rows[0][0])
