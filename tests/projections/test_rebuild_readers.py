"""A rebuild's reader processes and COPY staging write what the live way writes."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest
from django.db import connections, transaction
from psycopg.pq import Format

from projections import rebuild
from projections.rebuild import readahead, replay
from projections.rebuild.staging import Stages, copy_text, statement
from projections.registry import PROJECTOR_NAMES

from .conftest import rows, seed_history, settle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

COLUMNS = "a text, b bigint, c jsonb, d boolean, e uuid, f timestamptz"
TRICKY: list[dict[str, Any]] = [
    {
        "a": "tab\there\nnew\\line\r\\N",
        "b": 7,
        "c": {"q": 'say "hi"\\', "t": "\t", "u": "é€😀", "n": [1, None]},
        "d": True,
        "e": str(uuid.UUID(int=1)),
        "f": "2026-12-04T23:00:00.123456+00:00",
    },
    {"a": "\\N", "b": None, "c": "just a string", "d": False},
    {"a": None, "c": None, "e": str(uuid.UUID(int=2))},
    {"a": "", "b": -1, "c": [], "f": "2026-01-01T00:00:00+01:00"},
    {"a": "tab\tnew\nline\rno backslash", "b": 0, "c": [{"x": "\n"}], "d": False},
    {"a": "\u2028 and \x0b", "b": 1, "c": {"x": "\u2028"}},
]


def staged_through(query: str, rows_: list[dict[str, Any]], copy: bool) -> list[Any]:
    with transaction.atomic(using="read"), connections["read"].cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE sink ({COLUMNS}) ON COMMIT DROP")
        if copy:
            Stages().send([statement(query, rows_)])
        else:
            cursor.execute(query, [json.dumps(rows_)])
        cursor.execute("SELECT a, b, c::text, d, e, f FROM sink ORDER BY b, a")
        return cursor.fetchall()


def test_copied_rows_read_as_the_json_recordset_reads_them():
    query = (
        f"INSERT INTO sink SELECT * FROM jsonb_to_recordset(%s::jsonb) AS e({COLUMNS})"
    )

    assert staged_through(query, TRICKY, copy=True) == staged_through(
        query, TRICKY, copy=False
    )
    assert copy_text(COLUMNS, TRICKY).count(b"\n") == len(TRICKY)


def test_a_statement_not_in_the_recordset_form_is_sent_as_its_json():
    query = "INSERT INTO sink SELECT * FROM jsonb_populate_recordset(null::sink, %s)"

    assert statement(query, TRICKY).stage == ""
    assert staged_through(query, TRICKY, copy=True) == staged_through(
        query, TRICKY, copy=False
    )


@pytest.mark.parametrize("readers", [0, 2])
def test_a_rebuild_staged_by_reader_processes_gives_the_live_rows(
    store, monkeypatch, readers
):
    seed_history(store)
    settle()
    live = {name: rows(name) for name in PROJECTOR_NAMES}
    forked = []
    chunks = readahead.reader_chunks

    def counted(*args: Any) -> Any:
        forked.append(args[-1])
        return chunks(*args)

    monkeypatch.setattr(replay, "READERS", readers)
    monkeypatch.setattr(replay, "reader_chunks", counted)

    rebuild.rebuild_many(batch_size=4)

    assert {name: rows(name) for name in PROJECTOR_NAMES} == live
    assert forked == ([readers] if readers else [])
    assert all(result.equal for result in rebuild.verify_many(batch_size=3))


def test_a_rebuild_with_reader_processes_keeps_the_callers_session_locks(
    store, monkeypatch
):
    seed_history(store)
    settle()
    forked = []
    chunks = readahead.reader_chunks

    def counted(*args: Any) -> Any:
        forked.append(args[-1])
        return chunks(*args)

    monkeypatch.setattr(replay, "reader_chunks", counted)
    key = 0x52424C44  # "RBLD"
    sessions = {}
    for alias in ("default", "read"):
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s), pg_backend_pid()", [key])
            sessions[alias] = cursor.fetchone()[1]
    try:
        rebuild.rebuild_many(batch_size=4)

        # Readers by default (one per core, at most two).
        assert forked == [min(2, os.cpu_count() or 1)]
        for alias, pid in sessions.items():
            with connections[alias].cursor() as cursor:
                cursor.execute(
                    "SELECT pg_backend_pid(), count(*) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted AND pid = %s "
                    "AND (classid::bigint << 32) + objid::bigint = %s",
                    [pid, key],
                )
                assert cursor.fetchone() == (pid, 1), alias
    finally:
        for alias in sessions:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def test_a_readers_connection_reads_timestamps_as_django_reads_them():
    query = (
        "SELECT t FROM unnest(%s::timestamptz[]) WITH ORDINALITY AS u(t, n) ORDER BY n"
    )
    times = [
        "2026-12-05 03:51:13.952248+00",
        "1999-12-31 23:59:59+05:30",
        "2024-02-29 12:00:00.000001-08",
        "0001-01-01 00:00:00+00",
        "9999-12-31 23:59:59.999999+00",
    ]
    with connections["default"].cursor() as cursor:
        cursor.execute(query, [times])
        expected = cursor.fetchall()
    own = type(connections["default"])(connections["default"].settings_dict, "default")
    own.execute_wrappers.append(readahead.c_timestamps)
    try:
        with own.cursor() as cursor:
            cursor.execute(query, [times])
            read = cursor.fetchall()
            loader = cursor.cursor.adapters.get_loader(
                cursor.cursor.adapters.types["timestamptz"].oid, Format.TEXT
            )
    finally:
        own.close()

    assert loader is readahead._TIMESTAMPTZ
    assert read == expected
    assert [(t.tzinfo, t.isoformat()) for (t,) in read] == [
        (t.tzinfo, t.isoformat()) for (t,) in expected
    ]
