"""Figure 6, reads: p50/p99 of order detail, order list and product list at two sizes.

The read tables are filled with COPY (bench/seed.py; half the orders are the
bench customer's), the real server answers sequential requests from one
keep-alive client, and the figure compares the larger size with the smaller
one. The SQL queries per request are counted in-process at both sizes (the
test suite asserts them too: tests/queries_app).
"""

from __future__ import annotations

import time

import requests

from . import common, seed
from .common import Row, System
from .context import Context

ENDPOINTS = ("order detail", "order list", "product list")


def paths(ids: list[str]) -> dict[str, list[str]]:
    return {
        "order detail": [f"/api/orders/{order_id}/" for order_id in ids],
        "order list": ["/api/orders/"],
        "product list": ["/api/products/"],
    }


def query_counts(token: str, ids: list[str]) -> dict[str, int]:
    """Count the SQL queries of one request to each endpoint, in-process."""
    from django.db import connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(SERVER_NAME="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")
    counts = {}
    for name, urls in paths(ids).items():
        with (
            CaptureQueriesContext(connections["default"]) as default,
            CaptureQueriesContext(connections["read"]) as read,
        ):
            response = client.get(urls[0])
            assert response.status_code == 200, response.content
        counts[name] = len(default) + len(read)
    return counts


def latencies(
    url: str, token: str, ids: list[str], samples: int
) -> dict[str, list[float]]:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    out: dict[str, list[float]] = {}
    for name, urls in paths(ids).items():
        times = []
        for index in range(samples + 10):
            started = time.perf_counter()
            response = session.get(url + urls[index % len(urls)], timeout=10)
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if index >= 10:
                times.append(elapsed)
        out[name] = times
    return out


def run(ctx: Context) -> list[Row]:
    token = ctx.tokens[common.BENCH_USER]
    customer = common.user_id(common.BENCH_USER)
    other = common.user_id(common.BENCH_STAFF)
    measured: dict[int, dict[str, list[float]]] = {}
    queries: dict[int, dict[str, int]] = {}
    for size in ctx.read_sizes:
        common.reset_state()
        ids = seed.read_orders(size, customer, other)
        queries[size] = query_counts(token, ids)
        with System("web") as system:
            runs = [
                latencies(system.url, token, ids, ctx.read_samples)
                for _ in range(ctx.runs)
            ]
        measured[size] = {
            name: [t for run in runs for t in run[name]] for name in ENDPOINTS
        }
    common.reset_state()
    small, large = min(ctx.read_sizes), max(ctx.read_sizes)
    rows = []
    p = common.percentile
    for name in ENDPOINTS:
        big, base = measured[large][name], measured[small][name]
        fixed = queries[small][name] == queries[large][name]
        note = f"{queries[large][name]} queries" + ("" if fixed else " (NOT fixed)")
        rows.append(
            Row(
                "6 reads",
                f"{name} p50, {large:,} vs {small:,} orders",
                p(big, 50),
                p(base, 50),
                "ms",
                "<= 1.5x, <= 10 ms",
                p(big, 50) <= 1.5 * p(base, 50) and p(big, 50) <= 10 and fixed,
                note,
            )
        )
        rows.append(
            Row(
                "6 reads",
                f"{name} p99, {large:,} vs {small:,} orders",
                p(big, 99),
                p(base, 99),
                "ms",
            )
        )
    return rows
