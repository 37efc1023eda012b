"""`make bench`: measure the system against the limits of its own parts.

Each figure starts what it needs (the real server and workers, from the
Makefile's run commands) against the bench's own databases (cqrs_bench,
cqrs_bench_read) and Redis database 7, runs several times, and reports the
median of its runs beside a baseline measured in the same run. The table is
printed and written to bench/results/latest.md.

    .venv/bin/python bench/run.py                 # every figure, default sizes
    .venv/bin/python bench/run.py --quick         # seconds per figure, small sizes
    .venv/bin/python bench/run.py --only accept,latency
    .venv/bin/python bench/run.py --full          # rebuild at 1M events as well
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.context import Context

FIGURES = {
    "accept": "bench.fig_accept",
    "sustained": "bench.fig_sustained",
    "latency": "bench.fig_latency",
    "eventstore": "bench.fig_eventstore",
    "rebuild": "bench.fig_rebuild",
    "reads": "bench.fig_reads",
    "memory": "bench.fig_memory",
    "drain": "bench.fig_drain",
    "sockets": "bench.fig_sockets",
    "applier": "bench.fig_applier",
}
REQUIREMENTS = common.ROOT / "bench" / "requirements.txt"


def ensure_requirements() -> None:
    """Install bench/requirements.txt into .venv when a pin is missing."""
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        name, version = line.split("==")
        try:
            installed = importlib.metadata.version(name.split("[")[0])
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                    str(REQUIREMENTS),
                ],
                check=True,
            )
            return


def parse(argv: list[str]) -> tuple[argparse.Namespace, Context]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(FIGURES))
    parser.add_argument("--quick", action="store_true", help="short runs, small sizes")
    parser.add_argument("--full", action="store_true", help="rebuild at 1M events too")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--commands", type=int, help="commands of the sustained run")
    parser.add_argument("--memory-commands", type=int, help="N of the memory figure")
    parser.add_argument("--read-sizes", help="e.g. 10000,1000000")
    parser.add_argument("--sockets", type=int, help="sockets of the sockets figure")
    args = parser.parse_args(argv)
    ctx = Context()
    if args.quick:
        ctx = Context(
            runs=2,
            seconds=2,
            commands=300,
            latency_samples=50,
            append_seconds=1,
            rebuild_sizes=(10_000,),
            read_sizes=(1_000, 10_000),
            read_samples=50,
            memory_commands=500,
            sockets=200,
        )
    if args.full:
        ctx.rebuild_sizes = (100_000, 1_000_000)
    for name in ("runs", "seconds", "commands", "memory_commands", "sockets"):
        if getattr(args, name) is not None:
            setattr(ctx, name, getattr(args, name))
    if args.read_sizes:
        ctx.read_sizes = tuple(int(x) for x in args.read_sizes.split(","))
    return args, ctx


def machine() -> str:
    free = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout
    return (
        f"nproc {os.cpu_count()}, {platform.platform()}, Python "
        f"{platform.python_version()}\n\n```\n{free.rstrip()}\n```"
    )


def main(argv: list[str]) -> int:
    # A SIGTERM unwinds like Ctrl-C, so that every started process is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args, ctx = parse(argv)
    ensure_requirements()
    if common.ensure_wrk() is None:
        print("wrk not found: using the slower Python load generator", flush=True)
    common.prepare_databases()
    common.setup_django()
    ctx.tokens = common.ensure_users()
    started = datetime.datetime.now(datetime.UTC)
    rows: list[common.Row] = []
    for name in args.only.split(","):
        module = importlib.import_module(FIGURES[name.strip()])
        began = time.monotonic()
        print(f"== {name} ...", flush=True)
        figure_rows = module.run(ctx)
        rows += figure_rows
        print(common.table(figure_rows), flush=True)
        print(f"   ({time.monotonic() - began:.0f} s)", flush=True)
    report = (
        f"# make bench — {started:%Y-%m-%d %H:%M} UTC\n\n"
        f"Command: `{' '.join(['bench/run.py', *argv])}`; {ctx.runs} runs per "
        f"figure, medians.\n\nMachine: {machine()}\n\n{common.table(rows)}\n"
    )
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    (common.RESULTS / "latest.md").write_text(report)
    print("\n" + common.table(rows))
    print(f"\nwritten to {common.RESULTS / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
