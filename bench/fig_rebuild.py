"""Figure 5, rebuild: events/s of rebuilding every read model from the event store.

The store is filled with COPY (bench/seed.py: products, then orders with their
stock reservations, in transactions of 20,000 events), the live checkpoints
are put at its head, and `projections.rebuild.rebuild_many` (what
`manage.py rebuild_projections` runs) rebuilds the four projections from one
pass over the store. The figure is stored events over the total time; the
baseline is a keyset scan of the same events in reader order, batches of
1,000, decoded in Python. Sizes: 100,000 events (and 1,000,000 with --full).
"""

from __future__ import annotations

import json
import time

import psycopg

from . import common, seed
from .common import Row
from .context import Context


def keyset_scan() -> float:
    """Return events/s of reading the whole store in (tx_id, position) order."""
    started = time.perf_counter()
    count = 0
    tx, pos = "0", 0
    with psycopg.connect(f"{common.PG}/{common.DB_NAME}") as conn:
        while True:
            rows = conn.execute(
                "SELECT position, tx_id::text, stream_id, version, type, data::text, "
                "metadata::text, recorded_at FROM events "
                "WHERE (tx_id, position) > (%s::xid8, %s) "
                "AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) "
                # The table's columns: a bare tx_id is the selected text.
                "ORDER BY events.tx_id, events.position LIMIT 1000",
                [tx, pos],
            ).fetchall()
            if not rows:
                break
            for row in rows:
                json.loads(row[5])
                json.loads(row[6])
            count += len(rows)
            pos, tx = rows[-1][0], rows[-1][1]
    return count / (time.perf_counter() - started)


def rebuild_all() -> float:
    """Rebuild every projection; return the seconds it took."""
    from commands_app import eventstore
    from projections import rebuild, runner
    from projections.models import Checkpoint
    from projections.registry import projector_names

    names = list(projector_names())
    runner.ensure_checkpoints(names)
    head = eventstore.head()
    Checkpoint.objects.update(tx_id=head.tx_id, position=head.position)
    started = time.perf_counter()
    rebuild.rebuild_many(names)
    return time.perf_counter() - started


def run(ctx: Context) -> list[Row]:
    rows = []
    per_event: dict[int, float] = {}
    for size in ctx.rebuild_sizes:
        common.reset_state()
        stored = seed.events(size, customer=common.user_id(common.BENCH_USER))
        common.sql(common.DB_NAME, "VACUUM ANALYZE events")
        # Rebuilds are long: at most two runs, one at a million events.
        runs = 1 if size >= 1_000_000 else min(ctx.runs, 2)
        seconds = [rebuild_all() for _ in range(runs)]
        scans = [keyset_scan() for _ in range(runs)]
        rate = stored / common.median(seconds)
        per_event[size] = common.median(seconds) / stored
        rows.append(
            Row(
                "5 rebuild",
                f"{stored:,} events, 4 projections",
                rate,
                common.median(scans),
                "ev/s",
                ">= 20,000 ev/s",
                rate >= 20_000,
            )
        )
    common.reset_state()
    if len(per_event) > 1:
        small, large = min(per_event), max(per_event)
        growth = per_event[large] / per_event[small]
        rows.append(
            Row(
                "5 rebuild",
                f"per-event cost {large:,} vs {small:,}",
                per_event[large] * 1e6,
                per_event[small] * 1e6,
                "us/ev",
                "<= 1.3x",
                growth <= 1.3,
            )
        )
    return rows
