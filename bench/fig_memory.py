"""Figure 7, memory: RSS of the web server and the command worker, before and
after N commands (`--memory-commands`, 100,000 being the target).

The whole `make run` layout runs; a warm-up of 2,000 commands loads every lazy
import and fills every pool before the first reading. RSS is summed over each
process tree (uvicorn and its 2 workers; Celery and its 2 prefork children).
"""

from __future__ import annotations

from . import common
from .common import Row, System
from .context import Context
from .fig_sustained import LAYOUT, send_commands

WARM_UP = 2000
CHUNK = 5000
PRODUCTS = 200


def run(ctx: Context) -> list[Row]:
    common.reset_state()
    token = ctx.tokens[common.BENCH_USER]
    products = common.register_products(PRODUCTS)
    names = ("web", "commands_worker", "projections_worker")
    with System(*LAYOUT) as system:
        warm = min(WARM_UP, max(ctx.memory_commands // 5, 100))
        send_commands(system, token, products, warm)
        common.wait_until(common.all_projected, timeout=600, interval=0.1)
        before = {name: system.proc(name).rss_kib() for name in names}
        sent = 0
        while sent < ctx.memory_commands:
            chunk = min(CHUNK, ctx.memory_commands - sent)
            send_commands(system, token, products, chunk)
            sent += chunk
            # Bounded backlog: wait for the chunk before sending the next one.
            target = warm + sent
            common.wait_until(
                lambda target=target: common.succeeded() >= target,  # type: ignore[misc]
                timeout=3600,
                interval=0.2,
            )
        common.wait_until(common.all_projected, timeout=600, interval=0.1)
        after = {name: system.proc(name).rss_kib() for name in names}
    common.reset_state()
    rows = []
    for name in names:
        growth = after[name] / before[name] - 1
        rows.append(
            Row(
                "7 memory",
                f"{name} RSS after {ctx.memory_commands:,} commands (vs before)",
                after[name] / 1024,
                before[name] / 1024,
                "MiB",
                "<= +10 %",
                growth <= 0.10,
            )
        )
    return rows
