"""Profile a process of the running system with py-spy while a load runs.

    .venv/bin/python bench/profile.py commands_worker --commands 1000
    .venv/bin/python bench/profile.py web --accept 10
    .venv/bin/python bench/profile.py commands_worker --gil   # CPU only

Prints the functions with the most samples (inclusive, and where the time is
spent itself); the raw collapsed stacks go to bench/results/logs/<name>.stacks.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, fig_sustained
from bench.common import System


def summarize(stacks: Path, top: int = 35) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in stacks.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if not frames:
            continue
        n = int(count)
        total += n
        names = [
            f.split(" (")[0] + " " + f.split("/")[-1].rstrip(")")
            for f in frames.split(";")
        ]
        for name in set(names):
            inclusive[name] += n
        own[names[-1]] += n
    out = [f"{total} samples", "-- inclusive"]
    out += [f"{100 * n / total:5.1f}% {name}" for name, n in inclusive.most_common(top)]
    out += ["-- self"]
    out += [f"{100 * n / total:5.1f}% {name}" for name, n in own.most_common(top)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("target", help="web, commands_worker or projections_worker")
    parser.add_argument("--commands", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--accept", action="store_true", help="web alone, POST load")
    parser.add_argument(
        "--gil",
        action="store_true",
        help="only samples of a thread holding the GIL: where Python spends CPU",
    )
    args = parser.parse_args()
    common.prepare_databases()
    common.setup_django()
    token = common.ensure_users()[common.BENCH_USER]
    common.reset_state()
    products = common.register_products(50)
    layout = ("web",) if args.accept else fig_sustained.LAYOUT
    stacks = common.LOGS / f"{args.target}.stacks"
    with System(*layout) as system:
        fig_sustained.send_commands(
            system, token, products, 20
        ) if not args.accept else None
        pids = system.proc(args.target).pids()
        spy = subprocess.Popen(
            [
                str(common.VENV_BIN / "py-spy"),
                "record",
                "--format",
                "raw",
                "-r",
                "200",
                "-o",
                str(stacks),
                "--duration",
                str(args.seconds),
                "--subprocesses",
                *(["--gil"] if args.gil else []),
                "--pid",
                str(pids[0]),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if args.accept:
            body = common.order_body(products[0])
            common.post_load(
                f"{system.url}/api/commands/place-order/",
                body,
                token,
                seconds=args.seconds,
            )
        else:
            load = threading.Thread(
                target=fig_sustained.send_commands,
                args=(system, token, products, args.commands),
            )
            load.start()
            load.join()
        spy.wait()
    common.reset_state()
    print(summarize(stacks))


if __name__ == "__main__":
    main()
