"""The machine CPU of a command's own work, without the hops between processes.

    .venv/bin/python bench/floor.py [--commands 2000] [--seconds 5] 2>/dev/null

Issue 14's targets for the whole pipeline (machine CPU per command, sustained
rate) are set against figure 2, where a command goes through the web server,
the command relay, Celery, the effects relay and the projector relay. This
script measures what is left when every hop is taken away, on the same
machine and databases, one stage at a time:

1. accept: place-order POSTs and the baseline view's (bench/views.py) over
   HTTP at 16 connections, as figure 1 (the web server alone);
2. run: each accepted command run by `execution.execute` in this process, one
   after another (claim, decide, append, final status, its pushes): no
   relay, no broker, no Celery;
3. effects: `effects.drain_once` in this process (the order's e-mail);
4. projections: `runner.drain` in this process, the four read models in as
   few rounds as the events allow (one catch-up for every command).

Each stage's figure is the machine's CPU (/proc/stat, every process: ours,
PostgreSQL, Redis) over the commands. Stages 2-4 run serially with no
contention, in the largest batches there are: a floor for what figure 2's
processes do for the same commands, not an estimate of it.

With `--at-rest N`, the same stages one command at a time, 30 ms apart, as
figure 3 sends them, timed by the wall clock (p50 and p99 ms over N): a POST answered
by the baseline view and by place-order over HTTP, one sequential
client; then, in this process, each command run, the read models caught up
for it alone (a projection round) and its effects delivered. The work on the
way to figure 3's `projected` push, without the relay, Celery, the projector's
wake-up or the pushes; its last row adds each command's place-order POST, run
and projection round.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, fig_sustained
from bench.common import System

PRODUCTS = 50


def machine_ms(work: Callable[[], object], count: int) -> tuple[float, float]:
    """Run `work`; return the machine's CPU ms per item and the seconds it took."""
    started = time.perf_counter()
    machine = common.machine_cpu_seconds()
    # The e-mail backend of `make run` prints each message.
    with contextlib.redirect_stdout(io.StringIO()):
        work()
    used = common.machine_cpu_seconds() - machine
    return 1000 * used / count, time.perf_counter() - started


Rows = list[tuple[str, float, str]]


def accept_stage(token: str, seconds: float, commands: int) -> Rows:
    """Stage 1, then accept the commands of stages 2-4 over HTTP (figure 2's way)."""
    rows: Rows = []
    with System("web") as system:
        body = common.order_body(common.register_products(1)[0])
        urls = {
            "place-order": f"{system.url}/api/commands/place-order/",
            "the baseline view": f"{system.url}/bench/baseline/",
        }
        for url in urls.values():
            common.post_load(url, body, token, seconds=1, connections=4)
        for name, url in urls.items():
            machine = common.machine_cpu_seconds()
            result = common.post_load(url, body, token, seconds=seconds)
            ms = 1000 * (common.machine_cpu_seconds() - machine) / result.requests
            rate = result.requests / seconds
            rows.append((f"1 accept: {name}, HTTP", ms, f"{rate:.0f} req/s"))
        common.reset_state()
        products = common.register_products(PRODUCTS)
        fig_sustained.send_commands(system, token, products, commands)
    return rows


def work_stages() -> Rows:
    """Stages 2-4 over every command stored, in this process."""
    from commands_app import effects, execution
    from commands_app.models import CommandRecord
    from projections import runner

    ids = [
        UUID(str(pk))
        for pk in CommandRecord.objects.order_by("created_at").values_list(
            "pk", flat=True
        )
    ]

    def run_all() -> None:
        for command_id in ids:
            execution.execute(command_id)

    rows: Rows = []
    ms, seconds = machine_ms(run_all, len(ids))
    rows.append(("2 run: claim, decide, append, finish, push", ms, f"{seconds:.1f} s"))
    counts = common.command_counts()
    if counts != {"succeeded": len(ids)}:
        raise RuntimeError(f"the run stage ended with {counts}")
    done: list[int] = []
    ms, seconds = machine_ms(
        lambda: done.append(effects.drain_once(limit=10 * len(ids))), len(ids)
    )
    rows.append(("3 effects: deliver", ms, f"{done[-1]} effects, {seconds:.1f} s"))
    ms, seconds = machine_ms(lambda: done.append(runner.drain()), len(ids))
    rows.append(("4 projections: catch up", ms, f"{done[-1]} events, {seconds:.1f} s"))
    if not common.all_projected():
        raise RuntimeError("the projections stage left commands unprojected")
    return rows


AT_REST_GAP = 0.03  # seconds between two commands, as at rest
WARM_UP = 20
TO_PROJECTED = "1+2+4, each command's, added"


def wall_ms(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return 1000 * (time.perf_counter() - started)


def at_rest(token: str, count: int) -> list[tuple[str, float, float]]:
    """The stages one command at a time, by the wall clock (p50 and p99 ms)."""
    import requests

    from commands_app import effects, execution
    from projections import runner

    samples: dict[str, list[float]] = {}

    def record(name: str, index: int, ms: float) -> None:
        if index >= WARM_UP:
            samples.setdefault(name, []).append(ms)
        time.sleep(AT_REST_GAP)

    posts = {
        "1 POST -> 202, the baseline view (HTTP)": "/bench/baseline/",
        "1 POST -> 202, place-order (HTTP)": "/api/commands/place-order/",
    }
    ids: list[UUID] = []
    with System("web") as system:
        body = common.order_body(common.register_products(1)[0])
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        for index in range(count + WARM_UP):
            for name, path in posts.items():
                started = time.perf_counter()
                response = session.post(system.url + path, json=body, timeout=10)
                response.raise_for_status()
                record(name, index, 1000 * (time.perf_counter() - started))
            ids.append(UUID(response.json()["id"]))  # place-order's, the last POST
    with contextlib.redirect_stdout(io.StringIO()):
        for index, command_id in enumerate(ids):
            for name, work in (
                (
                    "2 run: claim, decide, append, finish",
                    partial(execution.execute, command_id),
                ),
                ("4 projections: one round for it", runner.drain),
                ("3 effects: deliver", partial(effects.drain_once, limit=10)),
            ):
                record(name, index, wall_ms(work))
    if common.command_counts() != {"succeeded": len(ids)}:
        raise RuntimeError(f"the run stage ended with {common.command_counts()}")
    # Each command's own three stages on the way to its `projected` push, added.
    samples[TO_PROJECTED] = [
        sum(stages)
        for stages in zip(
            samples["1 POST -> 202, place-order (HTTP)"],
            samples["2 run: claim, decide, append, finish"],
            samples["4 projections: one round for it"],
            strict=True,
        )
    ]
    return [
        (name, common.percentile(values, 50), common.percentile(values, 99))
        for name, values in samples.items()
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--at-rest", type=int, default=0, metavar="N")
    args = parser.parse_args(argv)
    common.prepare_databases()
    common.setup_django()
    token = common.ensure_users()[common.BENCH_USER]
    common.reset_state()
    if args.at_rest:
        rows = at_rest(token, args.at_rest)
        common.reset_state()
        print(f"one command at a time, {args.at_rest} place-order commands")
        print(f"  {'wall clock, ms':<46} {'p50':>6}  {'p99':>6}")
        for name, p50, p99 in rows:
            print(f"  {name:<46} {p50:6.2f}  {p99:6.2f}")
        return 0
    accept = accept_stage(token, args.seconds, args.commands)
    work = work_stages()
    common.reset_state()
    total = sum(ms for _, ms, _ in work)
    print(f"machine CPU ms per command, {args.commands} place-order commands")
    for name, ms, note in accept + work:
        print(f"  {name:<46} {ms:6.2f}  {note}")
    least, ours = accept[1][1], accept[0][1]
    for name, ms in (
        ("2-4, the command without its hops", total),
        ("with the baseline view (the least accept)", total + least),
        ("with our accept", total + ours),
    ):
        print(f"  {name:<46} {ms:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
