"""Figure 1, accept: place-order POSTs -> 202 at 16 connections, vs the baseline view.

The baseline (bench/views.py) runs in the same server process: same
authentication, parser and input serializer, one INSERT, 202. Workers are not
running, so the figure is the web tier alone; the accepted commands are
dropped afterwards. Each run also measures the baseline view a second time, right
after its first: the ratio of two runs of the same view is the figure's own
noise, printed beside the ratio of ours.
"""

from __future__ import annotations

from . import common
from .common import Row, System
from .context import Context

CONNECTIONS = 16


def run(ctx: Context) -> list[Row]:
    common.reset_state()
    token = ctx.tokens[common.BENCH_USER]
    (product,) = common.register_products(1)
    body = common.order_body(product)
    ours: list[common.LoadResult] = []
    base: list[common.LoadResult] = []
    again: list[common.LoadResult] = []
    # Machine CPU ms per request (web, PostgreSQL, Redis, the load generator),
    # the baseline view's over both of its runs.
    cpu_ours: list[float] = []
    cpu_base: list[float] = []
    with System("web") as system:
        command_url = f"{system.url}/api/commands/place-order/"
        baseline_url = f"{system.url}/bench/baseline/"
        # Warm both paths (imports, connections) before measuring.
        common.post_load(command_url, body, token, seconds=1, connections=4)
        common.post_load(baseline_url, body, token, seconds=1, connections=4)
        for _ in range(ctx.runs):
            for url, results, cpu in (
                (command_url, ours, cpu_ours),
                (baseline_url, base, cpu_base),
                (baseline_url, again, cpu_base),
            ):
                machine = common.machine_cpu_seconds()
                results.append(
                    common.post_load(
                        url,
                        body,
                        token,
                        seconds=ctx.seconds,
                        connections=CONNECTIONS,
                    )
                )
                cpu.append(
                    1000
                    * (common.machine_cpu_seconds() - machine)
                    / results[-1].requests
                )
    for result in ours + base + again:
        if result.non2xx or result.errors:
            raise RuntimeError(f"accept figure saw failures: {result}")
    common.reset_state()
    print(
        "   runs (ours/baseline/baseline again req/s): "
        + ", ".join(
            f"{o.rate:.0f}/{b.rate:.0f}/{a.rate:.0f}"
            for o, b, a in zip(ours, base, again, strict=True)
        ),
        flush=True,
    )
    med = common.median
    rate, base_rate = med([r.rate for r in ours]), med([r.rate for r in base])
    p99 = med([r.p99_ms for r in ours])
    worst, worst_base = min(
        zip(ours, base, strict=True), key=lambda r: r[0].rate / r[1].rate
    )
    noisiest, noisiest_base = min(
        zip(again, base, strict=True),
        key=lambda r: min(r[0].rate / r[1].rate, r[1].rate / r[0].rate),
    )
    return [
        Row(
            "1 accept",
            "place-order 202/s, 16 conn",
            rate,
            base_rate,
            "req/s",
            ">= 0.6x",
            rate >= 0.6 * base_rate,
        ),
        Row(
            "1 accept",
            f"place-order 202/s, the worst of the {len(ours)} runs against its own"
            " baseline",
            worst.rate,
            worst_base.rate,
            "req/s",
        ),
        Row(
            "1 accept",
            f"the baseline view against itself, run again right after: the"
            f" furthest from 1x of the {len(ours)} pairs (the figure's noise)",
            noisiest.rate,
            noisiest_base.rate,
            "req/s",
        ),
        Row(
            "1 accept",
            "CPU ms per request, whole machine (with the load generator)",
            med(cpu_ours),
            med(cpu_base),
            "ms",
        ),
        Row(
            "1 accept",
            "p50 latency",
            med([r.p50_ms for r in ours]),
            med([r.p50_ms for r in base]),
            "ms",
        ),
        Row(
            "1 accept",
            "p99 latency",
            p99,
            med([r.p99_ms for r in base]),
            "ms",
            "<= 50 ms",
            p99 <= 50,
        ),
    ]
