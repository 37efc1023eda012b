"""Hot statements (a token, an accept, an append, a command's final status, its
effects, the customers' keys): bound on the server, prepared.

Django's own cursors bind parameters on the client, so PostgreSQL parses and
plans every statement anew, and the ORM builds its SQL anew for each query
(for the token lookup, 0.6 ms of CPU more than running it). A plain psycopg
cursor on Django's connection (so in its transaction) runs a fixed statement
prepared (`prepare_threshold` in the database OPTIONS; None there turns
preparing off, e.g. behind a transaction-mode pooler). Django's checks and
error translation are kept; when Django logs queries (DEBUG,
CaptureQueriesContext) or has execute_wrapper hooks, the statement runs on
Django's own cursor instead, so that they see it as they see the ORM's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from django.db import connections
from django.db.models import Model

M = TypeVar("M", bound=Model)


# Written into a statement where it names `{alone}` as a FROM item: the statement's
# own transaction then commits without waiting for its WAL to reach the disk
# (`synchronous_commit` off for that transaction only). Only for a write whose
# loss the system repairs by itself should PostgreSQL crash in the next instant
# (a claim, a lease, a mark: docs/reliability.md, "Commits that may be lost");
# a crash loses a suffix of the commits, so any later commit that waits for the
# disk makes it durable too. Inside a transaction the statement is left to that
# transaction's own commit.
_ALONE = "(SELECT set_config('synchronous_commit', 'off', true)) AS alone"
_INSIDE = "(SELECT NULL) AS alone"


def repairable(sql: str, alias: str = "default") -> str:
    """Return `sql` with `{alone}` filled in for how it runs on `alias` now."""
    inside = connections[alias].in_atomic_block
    return _filled(sql, inside)


@functools.lru_cache(maxsize=64)
def _filled(sql: str, inside: bool) -> str:
    return sql.replace("{alone}", _INSIDE if inside else _ALONE)


def placeholders(count: int, each: str = "%s") -> str:
    """Return `count` parameter placeholders, comma-separated (`each` for one).

    A statement that takes its ids one parameter each, a statement per count,
    keeps PostgreSQL's generic plan; with the ids in one array it is planned
    anew on every call, prepared or not (a generic plan cannot know the
    array's length, so a custom plan always looks cheaper).
    """
    return ", ".join([each] * count)


def fetch_one(alias: str, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """Run `sql` on database `alias`, prepared; return its first row or None."""
    rows = fetch_all(alias, sql, params)
    return rows[0] if rows else None


def fetch_all(alias: str, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run `sql` on database `alias`, prepared; return its rows."""
    return _execute(alias, sql, params, names=False)[1]


def fetch_models(
    model: type[M], sql: str, params: Sequence[Any], *, alias: str = "default"
) -> list[M]:
    """Run `sql` prepared; return its rows as `model` instances, as `raw()` would.

    The statement returns every concrete field's column (`RETURNING *`); each
    value is converted as the ORM converts it, and any other column becomes
    an attribute of its own name. `Model.objects.raw()` builds its column
    mapping and its client-bound query anew on every call.
    """
    names, rows = _execute(alias, sql, params, names=True)
    build = _builder(model, alias, tuple(names))
    db = connections[alias]
    return [build(row, db) for row in rows]


def _execute(
    alias: str, sql: str, params: Sequence[Any], *, names: bool
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Return the rows, and the column names if asked (not on the append's path)."""
    db = connections[alias]
    db.ensure_connection()
    if db.queries_logged or db.execute_wrappers:
        # Django's own cursor, bound on the client: what it logs (DEBUG,
        # CaptureQueriesContext) and hands to its hooks is the statement with
        # its values, which can be run again as it is (EXPLAIN).
        with db.cursor() as wrapped:
            wrapped.execute(sql, params)
            columns = _names(wrapped.description) if names else []
            return columns, list(wrapped.fetchall())
    cursor = psycopg.Cursor(db.connection)
    db.validate_no_broken_transaction()
    with cursor, db.wrap_database_errors:
        cursor.execute(sql, params, prepare=True)
        return _names(cursor.description) if names else [], cursor.fetchall()


def _names(description: Any) -> list[str]:
    return [column[0] for column in description or ()]


@functools.lru_cache(maxsize=64)
def _builder(
    model: type[M], alias: str, names: tuple[str, ...]
) -> Callable[[tuple[Any, ...], Any], M]:
    """Return what turns a row of columns `names` into a `model` instance.

    Its converters are the backend's and the fields' (the same for every
    connection of `alias`); each call gets the calling thread's connection.
    """
    db = connections[alias]
    fields = model._meta.concrete_fields
    index = {name: i for i, name in enumerate(names)}
    missing = [f.column for f in fields if f.column not in index]
    if missing:
        raise ValueError(f"{model.__name__}: the statement lacks {missing}")
    attnames = [f.attname for f in fields]
    converted = []
    for field in fields:
        column = field.get_col(model._meta.db_table)
        converters = db.ops.get_db_converters(column) + (
            field.get_db_converters(db)  # type: ignore[attr-defined]  # not in the stubs
        )
        converted.append((index[field.column], column, tuple(converters)))
    taken = {f.column for f in fields}
    extras = [(name, i) for i, name in enumerate(names) if name not in taken]

    def build(row: tuple[Any, ...], db: Any) -> M:
        values = []
        for position, column, converters in converted:
            value = row[position]
            for converter in converters:
                value = converter(value, column, db)
            values.append(value)
        instance = model.from_db(alias, attnames, values)
        for name, position in extras:
            setattr(instance, name, row[position])
        return instance

    return build
