"""Figure 8, drain: commands/s at which command workers empty a backlog, by layout.

The web process alone accepts `ctx.commands` place-order commands (their tasks
wait in the broker); then the command workers of `make run` start
(COMMANDS_WORKER_CMD, one or two of them) and the figure is the number of
commands that succeed after the workers are ready over the time they take. No
beat runs (the sweeper would re-drive the waiting commands) and no projection
worker (an order's status does not wait for the read models).

Rows: two workers against one on Redis (the scaling of adding a worker on the
same host), the RabbitMQ broker (quorum queues, publisher confirms) against
Redis with one worker, and two workers against one on RabbitMQ. The RabbitMQ
rows need a local RabbitMQ and rabbitmqctl (a virtual host named after the
bench database, recreated per run and deleted after); without them they are
left out with a note.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import time

from . import common
from .common import Proc, Row, System
from .context import Context
from .fig_sustained import send_commands

PRODUCTS = 50
RABBITMQ_URL = os.environ.get(
    "BENCH_RABBITMQ_URL", f"amqp://guest:guest@127.0.0.1:5672/{common.DB_NAME}"
)


def rabbitmqctl(*args: str) -> None:
    subprocess.run(
        [shutil.which("rabbitmqctl") or "rabbitmqctl", "-q", *args],
        check=True,
        capture_output=True,
        timeout=60,
    )


def fresh_vhost() -> bool:
    """Recreate the bench's RabbitMQ virtual host (empty queues); False if unable."""
    vhost = RABBITMQ_URL.rsplit("/", 1)[1]
    if not shutil.which("rabbitmqctl") or not vhost:
        return False
    try:
        subprocess.run(
            ["rabbitmqctl", "-q", "delete_vhost", vhost],
            capture_output=True,
            timeout=60,
        )
        rabbitmqctl("add_vhost", vhost)
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    except (subprocess.SubprocessError, OSError):
        return False
    return True


def drain(ctx: Context, products: list[str], workers: int, **env: str) -> float:
    """Return the commands/s at which `workers` command workers drain a backlog."""
    common.sql(common.DB_NAME, "TRUNCATE commands")
    with System("web", **env) as system:
        send_commands(system, ctx.tokens[common.BENCH_USER], products, ctx.commands)
        argv = common.make_commands(system.port)["commands_worker"]
        procs = []
        for index in range(workers):
            named = list(argv)
            named[named.index("-n") + 1] = f"commands{index}@%h"
            proc = Proc(
                f"commands-{index}", named, common.bench_env(system.port, **env)
            )
            procs.append(proc.start())
            system.procs.append(proc)
        for proc in procs:
            common.wait_until(functools.partial(system.is_ready, proc), timeout=60)
        started = time.perf_counter()
        before = common.succeeded()
        # Every command is stored already: wait until none is open (counting
        # them all every 20 ms took PostgreSQL's CPU from the workers).
        common.wait_until(lambda: not common.any_open(), timeout=1800, interval=0.02)
        elapsed = time.perf_counter() - started
        if common.succeeded() != ctx.commands:
            raise RuntimeError(f"drain ended with {common.command_counts()}")
    return (ctx.commands - before) / elapsed


def run(ctx: Context) -> list[Row]:
    common.reset_state()
    products = common.register_products(PRODUCTS)
    rabbit = {"CELERY_BROKER_URL": RABBITMQ_URL}
    rates: dict[str, list[float]] = {
        "redis 1": [],
        "redis 2": [],
        "rabbitmq 1": [],
        "rabbitmq 2": [],
    }
    have_rabbit = fresh_vhost()
    for _ in range(ctx.runs):
        rates["redis 1"].append(drain(ctx, products, 1))
        rates["redis 2"].append(drain(ctx, products, 2))
        if have_rabbit and fresh_vhost():
            rates["rabbitmq 1"].append(drain(ctx, products, 1, **rabbit))
        if have_rabbit and fresh_vhost():
            rates["rabbitmq 2"].append(drain(ctx, products, 2, **rabbit))
    common.reset_state()
    if have_rabbit:
        subprocess.run(
            ["rabbitmqctl", "-q", "delete_vhost", RABBITMQ_URL.rsplit("/", 1)[1]],
            capture_output=True,
            timeout=60,
        )
    one = common.median(rates["redis 1"])
    rows = [
        Row(
            "8 drain",
            f"2 command workers vs 1 (Redis), {ctx.commands} cmds",
            common.median(rates["redis 2"]),
            one,
            "cmd/s",
            note="each worker -c 2, as make run; same host",
        )
    ]
    if rates["rabbitmq 1"]:
        rows.append(
            Row(
                "8 drain",
                f"RabbitMQ broker vs Redis, 1 worker, {ctx.commands} cmds",
                common.median(rates["rabbitmq 1"]),
                one,
                "cmd/s",
                note="quorum queues, publisher confirms",
            )
        )
    if rates["rabbitmq 2"]:
        rows.append(
            Row(
                "8 drain",
                f"2 command workers vs 1 (RabbitMQ), {ctx.commands} cmds",
                common.median(rates["rabbitmq 2"]),
                common.median(rates["rabbitmq 1"]),
                "cmd/s",
                note="each worker -c 2; same host",
            )
        )
    else:
        rows.append(
            Row(
                "8 drain",
                "RabbitMQ broker vs Redis",
                float("nan"),
                one,
                "cmd/s",
                note="no local RabbitMQ/rabbitmqctl: not measured",
            )
        )
    return rows
