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
    session: requests.Session, ws: ClientConnection, url: str, product: str
) -> tuple[float, float]:
    """Return ms from the POST to the `succeeded` push and to the `projected` push."""
    started = time.perf_counter()
    response = session.post(url, json=common.order_body(product), timeout=10)
    response.raise_for_status()
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
    return succeeded, projected


def run(ctx: Context) -> list[Row]:
    common.reset_state()
    token = ctx.tokens[common.BENCH_USER]
    product, hot = common.register_products(2)
    seed.reservations(hot, HOT_RESERVATIONS)
    succeeded: list[float] = []
    projected: list[float] = []
    hot_succeeded: list[float] = []
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
                done, seen = one_command(session, ws, url, product)
                if index >= WARM_UP:
                    succeeded.append(done)
                    projected.append(seen)
            # Place-order on a product with 10,000 reservations before it.
            for index in range(HOT_SAMPLES + 2):
                done, _ = one_command(session, ws, url, hot)
                if index >= 2:
                    hot_succeeded.append(done)
        baseline = noop.round_trips(ctx.latency_samples)
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
    ]
