"""Figure 3, latency at rest: POST -> `succeeded` push and POST -> `projected` push.

One client sends place-order commands one after another over a keep-alive
connection and listens on /ws/commands/; for each command it times the push
that says `succeeded` and the push that says `projected`. The baseline is a
Celery round trip of a task that commits one PostgreSQL row and answers on a
Redis list (bench/celery_noop.py), on the same broker and worker settings.
"""

from __future__ import annotations

import json
import time
from typing import Any

import requests
from websockets.sync.client import ClientConnection, connect

from . import common, noop, seed
from .common import Row, System
from .context import Context
from .fig_sustained import LAYOUT

WARM_UP = 10
HOT_RESERVATIONS = 10_000
HOT_SAMPLES = 30


def one_command(
    session: requests.Session,
    ws: ClientConnection,
    url: str,
    product: str,
    stages: list[dict[str, Any]] | None = None,
) -> tuple[float, float]:
    """Return ms from the POST to the `succeeded` push and to the `projected` push.

    With `stages`, append the command's id, the wall clock at the POST and the
    ms to the 202, to each push (for `stage_split`).
    """
    posted_at = time.time()
    started = time.perf_counter()
    response = session.post(url, json=common.order_body(product), timeout=10)
    response.raise_for_status()
    accepted = (time.perf_counter() - started) * 1000
    command_id = response.json()["id"]
    succeeded = projected = 0.0
    while not projected:
        message: dict[str, Any] = json.loads(ws.recv(timeout=10))
        command = message.get("command") or {}
        if command.get("id") != command_id:
            continue
        elapsed = (time.perf_counter() - started) * 1000
        if command.get("status") == "succeeded" and not succeeded:
            succeeded = elapsed
        if command.get("projected"):
            projected = elapsed
            succeeded = succeeded or elapsed
    if stages is not None:
        stages.append(
            {
                "id": command_id,
                "posted_at": posted_at,
                "accepted": accepted,
                "succeeded": succeeded,
                "projected": projected,
            }
        )
    return succeeded, projected


# Where a command's time goes, from the client's clock and the command row's
# (created_at: the accepting INSERT's transaction; started_at: the worker's
# claim; finished_at: the final UPDATE, just before the commit).
STAGES = (
    ("POST -> 202", "accepted"),
    ("202 -> claimed by a worker (relay, broker, pool)", "claimed"),
    ("claimed -> final status written (decide, append)", "finished"),
    ("written -> succeeded push heard (commit, push)", "pushed"),
    ("succeeded -> projected push heard (projection round)", "projected"),
)


def stage_split(stages: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Return the ms of each stage of `STAGES`, one per command timed."""
    rows = common.sql(
        common.DB_NAME,
        "SELECT id::text, extract(epoch FROM started_at)::float8, "
        "extract(epoch FROM finished_at)::float8 FROM commands WHERE id = ANY(%s)",
        [[s["id"] for s in stages]],
    )
    times = {command_id: (started, finished) for command_id, started, finished in rows}
    split: dict[str, list[float]] = {key: [] for _, key in STAGES}
    for s in stages:
        started, finished = times[s["id"]]
        claimed = (started - s["posted_at"]) * 1000
        written = (finished - s["posted_at"]) * 1000
        split["accepted"].append(s["accepted"])
        split["claimed"].append(claimed - s["accepted"])
        split["finished"].append(written - claimed)
        split["pushed"].append(s["succeeded"] - written)
        split["projected"].append(s["projected"] - s["succeeded"])
    return split


def run(ctx: Context) -> list[Row]:
    common.reset_state()
    token = ctx.tokens[common.BENCH_USER]
    product, hot = common.register_products(2)
    seed.reservations(hot, HOT_RESERVATIONS)
    succeeded: list[float] = []
    projected: list[float] = []
    hot_succeeded: list[float] = []
    stages: list[dict[str, Any]] = []
    with System(*LAYOUT) as system:
        noop.noop_worker(system)
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        url = f"{system.url}/api/commands/place-order/"
        ws_url = system.url.replace("http://", "ws://") + "/ws/commands/"
        with connect(
            ws_url, additional_headers={"Authorization": f"Token {token}"}
        ) as ws:
            common.wait_until(common.all_projected, timeout=30)
            for index in range(ctx.latency_samples + WARM_UP):
                timed = stages if index >= WARM_UP else None
                done, seen = one_command(session, ws, url, product, timed)
                if index >= WARM_UP:
                    succeeded.append(done)
                    projected.append(seen)
            # Place-order on a product with 10,000 reservations before it.
            for index in range(HOT_SAMPLES + 2):
                done, _ = one_command(session, ws, url, hot)
                if index >= 2:
                    hot_succeeded.append(done)
        baseline = noop.round_trips(ctx.latency_samples)
    split = stage_split(stages)
    common.reset_state()
    p = common.percentile
    base50, base99 = p(baseline, 50), p(baseline, 99)
    return [
        Row("3 latency", "POST -> succeeded push, p50", p(succeeded, 50), base50, "ms"),
        Row("3 latency", "POST -> succeeded push, p99", p(succeeded, 99), base99, "ms"),
        Row(
            "3 latency",
            "succeeded p50, product with 10,000 reservations vs fresh",
            p(hot_succeeded, 50),
            p(succeeded, 50),
            "ms",
            "<= 1.5x (flat)",
            p(hot_succeeded, 50) <= 1.5 * p(succeeded, 50),
        ),
        Row(
            "3 latency",
            "POST -> projected push, p50",
            p(projected, 50),
            base50,
            "ms",
            "<= 3x",
            p(projected, 50) <= 3 * base50,
        ),
        Row(
            "3 latency",
            "POST -> projected push, p99",
            p(projected, 99),
            base99,
            "ms",
            "<= 100 ms",
            p(projected, 99) <= 100,
        ),
        *(
            Row("3 latency", f"stage p{pct}: {label}", p(split[key], pct), None, "ms")
            for pct in (50, 99)
            for label, key in STAGES
        ),
    ]
