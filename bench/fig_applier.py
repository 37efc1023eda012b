"""Figure 10, applier headroom: a projection applier's drain rate over a backlog
against the event store's append rate with 4 writers.

The store is filled with a backlog (bench/seed.py: products, then orders with
their stock reservations), the read side is emptied and every checkpoint put
at the start, then the live applier (`projections.runner.catch_up`, what a
projection worker runs when woken) drains it:

- all four projections together, in rounds (one worker, as `make run`): one
  read of the events per round, each projection's share applied in it;
- each projection alone (`catch_up(name)`): the rate of one applier per
  projection, if each had a worker of its own; the slowest one bounds them.

The baseline is the append rate of `eventstore.append` with 4 writer processes
(fig_eventstore's "ours"), at 2 events per transaction (a placed order: the
order and its stock reservation). The ratio is the headroom: how many times the
store's write rate one applier per projection can apply. Below 1x, the read
models fall behind for as long as writers keep that rate up (docs/performance.md
says what to do past it).
"""

from __future__ import annotations

import time

from . import common, seed
from .common import Row
from .context import Context
from .fig_eventstore import measure

BATCH = 500


def reset_read_side() -> None:
    """Empty the read models and their checkpoints; the event store stays."""
    tables = common.sql(
        common.READ_DB_NAME,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename LIKE 'read\\_%'",
    )
    common.sql(common.READ_DB_NAME, "TRUNCATE " + ", ".join(t for (t,) in tables))


def drain_rate(stored: int, name: str | None) -> float:
    """Return events/s of catching `name` (or every projection) up from the start."""
    from django.db import connections

    from projections import runner
    from projections.registry import projector_names

    reset_read_side()
    connections.close_all()
    runner.ensure_checkpoints(list(projector_names()))
    applied = 0
    started = time.perf_counter()
    # A short read ends catch_up(); another session's open transaction (the
    # readers' horizon is cluster-wide) can hold events back: go on until all.
    while applied < stored:
        result = runner.catch_up(name, batch_size=BATCH)
        if result.errors:
            raise RuntimeError(f"applier failed: {result.errors}")
        moved = max(result.applied.values(), default=0)
        applied += moved
        if moved == 0:
            if time.perf_counter() - started > 1800:
                raise RuntimeError(f"applier stuck at {applied} of {stored}")
            time.sleep(0.01)
    elapsed = time.perf_counter() - started
    return stored / elapsed


def run(ctx: Context) -> list[Row]:
    from projections.registry import projector_names

    size = min(ctx.rebuild_sizes)
    common.reset_state()
    stored = seed.events(size, customer=common.user_id(common.BENCH_USER))
    common.sql(common.DB_NAME, "VACUUM ANALYZE events")
    names = list(projector_names())
    rates: dict[str, list[float]] = {"all": [], **{name: [] for name in names}}
    runs = min(ctx.runs, 2)
    for _ in range(runs):
        rates["all"].append(drain_rate(stored, None))
        for name in names:
            rates[name].append(drain_rate(stored, name))
    # The writers' rate, on the same store (their events come after the backlog).
    appends = {
        per_tx: common.median(
            [measure("ours", per_tx, 4, ctx.append_seconds) for _ in range(runs)]
        )
        for per_tx in (1, 2)
    }
    common.reset_state()
    append = appends[2]
    rows = [
        Row(
            "10 applier",
            f"4 projections in rounds (1 worker) vs 4 writers at 2 ev/tx, "
            f"{stored:,}-event backlog",
            common.median(rates["all"]),
            append,
            "ev/s",
            "> 1x",
            common.median(rates["all"]) > append,
            note=f"writers at 1 ev/tx: {common.fmt(appends[1])} ev/s",
        )
    ]
    per_projection = {name: common.median(rates[name]) for name in names}
    slowest = min(per_projection, key=lambda name: per_projection[name])
    for name in names:
        rows.append(
            Row(
                "10 applier",
                f"{name} alone vs 4 writers at 2 ev/tx",
                per_projection[name],
                append,
                "ev/s",
                "> 1x",
                per_projection[name] > append,
                note="slowest" if name == slowest else "",
            )
        )
    return rows
