"""Figure 4, event store: appended events/s, 1 and 10 events per transaction,
1 and 4 writers (processes), each writer on streams of its own.

Beside our `eventstore.append` (Django connection, expected versions, JSON
metadata) the same run measures: raw psycopg INSERT+COMMIT of the same rows
(the same JSON a restock and its metadata are written as, so the same index
entries: `metadata->>'command_id'` is indexed) into a table of the same shape
(`bench_raw_events`, LIKE events INCLUDING ALL); the same with a
transaction-level advisory lock that serialises every append (the alternative
to our xid horizon); at 10 events per transaction, 1 and 4 writers, the raw
INSERT+COMMIT with the `pg_notify` that every append of ours sends in its
statement (which PostgreSQL pays at commit, under a lock for the whole cluster),
and with the same `pg_notify` sent in a second transaction after the commit;
and the `eventsourcing` library (9.5, its own PostgreSQL
persistence and tables, in the bench database), installed only for the bench.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Callable
from typing import Any

from . import common
from .common import Row
from .context import Context

SIZES = (1, 10)
WRITERS = (1, 4)
KINDS = ("ours", "raw", "advisory", "eventsourcing")
# Raw INSERT+COMMIT with the NOTIFY that every append of ours sends (its cost is
# PostgreSQL's, at commit), at 10 events a transaction: with one writer it costs
# little, with four also what the cluster-wide NOTIFY lock costs their commits.
NOTIFY_CASES = ((10, 1), (10, 4))
NOTIFY_KINDS = ("notify", "notify after")


def _metadata(product: uuid.UUID) -> dict[str, str]:
    return {"command_id": str(product), "recorded_by": "bench"}


def _ours(per_tx: int) -> Callable[[], int]:
    from django.db import transaction

    from commands_app import eventstore
    from commands_app.domain.events import ProductRestocked

    product = uuid.uuid4()
    stream = f"product-{product}"
    events = tuple(
        ProductRestocked(product_id=product, quantity=1) for _ in range(per_tx)
    )
    version = [0]

    def append() -> int:
        with transaction.atomic():
            eventstore.append(
                [eventstore.NewEvents(stream, version[0], events)],
                metadata=_metadata(product),
            )
        version[0] += per_tx
        return per_tx

    return append


def _raw(per_tx: int, kind: str) -> Callable[[], int]:
    """Return raw psycopg appends of `kind`: raw, advisory, notify, notify after."""
    import json

    import psycopg

    from commands_app.eventstore import PROJECTIONS_CHANNEL

    conn = psycopg.connect(f"{common.PG}/{common.DB_NAME}")
    product = uuid.uuid4()
    stream = f"product-{product}"
    values = ", ".join(["(%s, %s, %s, %s::jsonb, %s::jsonb)"] * per_tx)
    statement = (
        "INSERT INTO bench_raw_events (stream_id, version, type, data, metadata) "  # noqa: S608
        f"VALUES {values} RETURNING position"
    )
    if kind == "notify":  # the statement's shape of ours (eventstore._insert_sql)
        statement = (
            f"WITH appended AS ({statement}) SELECT appended.position "  # noqa: S608
            f"FROM appended, pg_notify('{PROJECTIONS_CHANNEL}', '') "
            "ORDER BY appended.position"
        )
    data = json.dumps({"product_id": str(product), "quantity": 1})
    meta = json.dumps(_metadata(product))
    version = [0]

    def append() -> int:
        params: list[Any] = []
        for offset in range(1, per_tx + 1):
            params += [stream, version[0] + offset, "product.restocked.v1", data, meta]
        with conn.cursor() as cursor:
            if kind == "advisory":
                cursor.execute("SELECT pg_advisory_xact_lock(7007)")
            cursor.execute(statement, params)
            cursor.fetchall()
        conn.commit()
        if kind == "notify after":
            # The alternative to notifying in the appending transaction: a
            # second one, after the commit, that does not wait for its flush.
            conn.execute(
                "SELECT set_config('synchronous_commit', 'off', true), "
                f"pg_notify('{PROJECTIONS_CHANNEL}', '')"
            )
            conn.commit()
        version[0] += per_tx
        return per_tx

    return append


def _eventsourcing(per_tx: int, *, create: bool = False) -> Callable[[], int]:
    from eventsourcing.application import Application

    from .es_peer import Stock

    app: Application = Application(
        env={**eventsourcing_env(), "CREATE_TABLE": "y" if create else "n"}
    )
    stock = Stock()
    app.save(stock)

    def append() -> int:
        for _ in range(per_tx):
            stock.restock(1)
        app.save(stock)
        return per_tx

    return append


def eventsourcing_env() -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": common.DB_NAME,
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": "5432",
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "",
        "POSTGRES_SCHEMA": "public",
    }


def _writer(kind: str, per_tx: int, seconds: float, barrier: Any, out: Any) -> None:
    if kind == "ours":
        append = _ours(per_tx)
    elif kind == "eventsourcing":
        append = _eventsourcing(per_tx)
    else:
        append = _raw(per_tx, kind)
    append()  # connect and warm up
    barrier.wait()
    count = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        count += append()
    out.put(count)


def measure(kind: str, per_tx: int, writers: int, seconds: float) -> float:
    """Return events/s of `writers` processes appending for `seconds`."""
    from django.db import connections

    connections.close_all()  # a forked child must not share the parent's socket
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(writers), ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(kind, per_tx, seconds, barrier, out))
        for _ in range(writers)
    ]
    for proc in procs:
        proc.start()
    total = sum(out.get(timeout=seconds + 60) for _ in procs)
    for proc in procs:
        proc.join()
    return total / seconds


def prepare() -> None:
    common.sql(
        common.DB_NAME,
        "DROP TABLE IF EXISTS bench_raw_events; "
        "CREATE TABLE bench_raw_events (LIKE events INCLUDING ALL)",
    )
    _eventsourcing(1, create=True)()  # the library creates its tables once


def run(ctx: Context) -> list[Row]:
    common.reset_state()
    prepare()
    results: dict[tuple[str, int, int], list[float]] = {}
    for _ in range(ctx.runs):
        for per_tx in SIZES:
            for writers in WRITERS:
                notify = NOTIFY_KINDS if (per_tx, writers) in NOTIFY_CASES else ()
                for kind in (*KINDS, *notify):
                    rate = measure(kind, per_tx, writers, ctx.append_seconds)
                    results.setdefault((kind, per_tx, writers), []).append(rate)
    common.reset_state()
    rates = {key: common.median(values) for key, values in results.items()}
    rows = []
    for per_tx in SIZES:
        for writers in WRITERS:
            ours, raw = rates["ours", per_tx, writers], rates["raw", per_tx, writers]
            label = f"{per_tx} ev/tx, {writers} writer{'s' if writers > 1 else ''}"
            target = ">= 0.8x raw" if per_tx == 1 else ""
            rows.append(
                Row(
                    "4 appends",
                    f"{label} vs raw INSERT+COMMIT",
                    ours,
                    raw,
                    "ev/s",
                    target,
                    ours >= 0.8 * raw if per_tx == 1 else None,
                )
            )
    for per_tx, writers in NOTIFY_CASES:
        # The part of the gap above that is PostgreSQL's NOTIFY at commit (a
        # queue write, and one lock for the whole cluster held until the
        # commit is flushed, so notifying commits are not flushed together),
        # not our Python: the ceiling of any writer that notifies, and ours
        # against it.
        ours = rates["ours", per_tx, writers]
        raw, notified = rates["raw", per_tx, writers], rates["notify", per_tx, writers]
        label = f"{per_tx} ev/tx, {writers} writer{'s' if writers > 1 else ''}"
        rows.append(
            Row(
                "4 appends",
                f"{label}: raw with our NOTIFY vs raw (a notifying writer's ceiling)",
                notified,
                raw,
                "ev/s",
            )
        )
        rows.append(
            Row(
                "4 appends",
                f"{label}: raw with the NOTIFY in a second transaction after the "
                "commit vs raw",
                rates["notify after", per_tx, writers],
                raw,
                "ev/s",
            )
        )
        rows.append(
            Row(
                "4 appends",
                f"{label} vs raw INSERT+COMMIT with the same NOTIFY",
                ours,
                notified,
                "ev/s",
            )
        )
    for per_tx in SIZES:
        ours, locked = rates["ours", per_tx, 4], rates["advisory", per_tx, 4]
        rows.append(
            Row(
                "4 appends",
                f"{per_tx} ev/tx, 4 writers vs advisory-lock variant",
                ours,
                locked,
                "ev/s",
                "> 1x (no global lock)",
                ours > locked,
            )
        )
    for per_tx in SIZES:
        for writers in WRITERS:
            ours = rates["ours", per_tx, writers]
            peer = rates["eventsourcing", per_tx, writers]
            rows.append(
                Row(
                    "4 appends",
                    f"{per_tx} ev/tx, {writers} writer(s) vs eventsourcing 9.5",
                    ours,
                    peer,
                    "ev/s",
                    "> 1x",
                    ours > peer,
                )
            )
    return rows
