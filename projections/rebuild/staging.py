"""Stage a chunk's rows away from the database, then COPY them in.

A projector's `write()` sends one statement per kind of staged row, its rows as
JSON read by `jsonb_to_recordset(%s::jsonb) AS e(<columns>)`. A rebuild runs the
handlers and `write()` where no database is (a reader process, see
`readahead.py`) and keeps each statement with its rows in COPY's text format;
the rebuilding process then COPYs the rows into a temporary table of those
columns and runs the same statement over that table. The statements, and so
the rows they write, are the live projection's own: only how the staged rows
reach the server differs (no JSON dump and parse per row).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction

from commands_app.eventstore import json_encoder

from ..base import READ_DB, Decoded, Projector

RECORDSET = re.compile(r"jsonb_to_recordset\(%s::jsonb\)\s+AS\s+e\(([^()]*)\)")
JSON_TYPES = frozenset({"json", "jsonb"})
_NULL = "\\N"
# json.dumps(value, ensure_ascii=False), without a new encoder for each call.
_json = json_encoder(ensure_ascii=False)
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class NotStageable(Exception):
    """Raise when a projector's batch cannot be staged away from the database."""


@dataclass(frozen=True)
class Statement:
    """One statement of a projector's `write()`, with its rows ready to send.

    `stage` names the temporary table the rows go to, `columns` its columns,
    `query` reads it as `e`; `rows` is COPY text. A statement whose SQL is not
    the recordset form keeps its JSON (`rows` is then the JSON parameter).
    """

    query: str
    stage: str
    columns: str
    rows: bytes


def stage(projector: Projector, batch: Sequence[Decoded]) -> list[Statement]:
    """Run the projector's handlers and `write()` over a batch; return its writes.

    Raise NotStageable if it would touch the database in another way.
    """
    statements: list[Statement] = []

    def capture(query: str, rows: list[dict[str, Any]]) -> None:
        if rows:
            statements.append(statement(query.format_map(projector.table_names), rows))

    def refuse(query: str, params: Sequence[Any] = ()) -> int:
        raise NotStageable(f"{projector.name} writes outside sql_rows()")

    projector.sql_rows = capture  # type: ignore[method-assign]
    projector.sql = refuse  # type: ignore[method-assign]
    try:
        projector.apply_decoded(batch)
    finally:
        del projector.sql_rows, projector.sql
    return statements


def statement(query: str, rows: list[dict[str, Any]]) -> Statement:
    """Return the statement over staged rows: COPY text where the SQL allows."""
    found = RECORDSET.search(query)
    rest = "" if found is None else query[: found.start()] + query[found.end() :]
    if found is None or "%" in rest:
        # Not the recordset form, or other placeholders: sent as the live way does.
        return Statement(query, "", "", json.dumps(rows).encode())
    columns = found.group(1).strip()
    name = "rebuild_stage_" + hashlib.md5(query.encode()).hexdigest()[:16]  # noqa: S324
    return Statement(
        query[: found.start()] + f"{name} AS e" + query[found.end() :],
        name,
        columns,
        copy_text(columns, rows),
    )


def copy_text(columns: str, rows: list[dict[str, Any]]) -> bytes:
    """Return rows in COPY's text format, each value as jsonb_to_recordset reads it.

    A value is escaped only when it has a character COPY treats specially
    (most have none: UUIDs, numbers, timestamps); a NULL is never escaped.
    """
    fields = []
    for column in columns.split(","):
        name, _, kind = column.strip().partition(" ")
        fields.append((name, kind.strip().lower() in JSON_TYPES))
    lines = [
        "\t".join([_cell(row.get(name), is_json) for name, is_json in fields])
        for row in rows
    ]
    lines.append("")
    return "\n".join(lines).encode()


def _cell(value: Any, is_json: bool) -> str:
    """Return one value as COPY text, escaped only if it has to be."""
    if value is None:
        return _NULL
    if is_json:
        return _json_value(value)
    # A printable string has no tab, newline or carriage return.
    if value.__class__ is str and value.isprintable() and "\\" not in value:
        return value
    if value.__class__ is int:
        return str(value)
    return _value(value)


def _json_value(value: Any) -> str:
    # JSON text has no raw tab or newline (they are escaped, with a backslash).
    text = _json(value)
    return text if "\\" not in text else _escape(text)


def _value(value: Any) -> str:
    if isinstance(value, dict | list):
        return _json_value(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return _escape(value if isinstance(value, str) else str(value))


def _escape(text: str) -> str:
    return text.translate(_ESCAPES)


class Stages:
    """The temporary tables staged rows go through, on the read connection.

    Each is created once per connection and emptied at every commit; one used
    twice in a transaction (the locked last stretch runs several chunks in one)
    is emptied before its second use.
    """

    def __init__(self) -> None:
        self.created: set[str] = set()
        self.dirty: set[str] = set()

    def send(self, statements: Sequence[Statement]) -> None:
        """Run staged statements on the read database, in the caller's transaction."""
        connection = connections[READ_DB]
        connection.ensure_connection()
        with connection.connection.cursor() as cursor:
            for item in statements:
                if not item.stage:
                    cursor.execute(item.query, [item.rows.decode()])
                    continue
                if item.stage not in self.created:
                    cursor.execute(
                        f"CREATE TEMPORARY TABLE IF NOT EXISTS {item.stage} "
                        f"({item.columns}) ON COMMIT DELETE ROWS"
                    )
                    # Known to exist once the creating transaction commits.
                    transaction.on_commit(
                        functools.partial(self.created.add, item.stage), using=READ_DB
                    )
                if item.stage in self.dirty:
                    cursor.execute(f"TRUNCATE {item.stage}")
                self.dirty.add(item.stage)
                with cursor.copy(f"COPY {item.stage} FROM STDIN") as copy:
                    copy.write(item.rows)
                cursor.execute(item.query)
        transaction.on_commit(self.dirty.clear, using=READ_DB)

    def drop(self) -> None:
        """Drop the temporary tables on this connection."""
        with connections[READ_DB].cursor() as cursor:
            for name in sorted(self.created):
                cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")
        self.created.clear()
        self.dirty.clear()
