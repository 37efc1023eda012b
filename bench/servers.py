"""The web server choice: the layouts that keep one port, at the accept figure's load.

    .venv/bin/python bench/servers.py [--seconds 5] [--runs 5]

For each layout, prints place-order and baseline-view req/s (median of the runs,
the two paths measured in turn within each run), the ratio of the two and p99.
The ASGI layouts serve WebSocket on the same port; the gunicorn gthread layout
serves HTTP only (WebSocket would need a second server and a path-routing
proxy in front of both), so it is the upper bound of the split layout.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.common import Proc, System

ASGI = "config.asgi:application"
LAYOUTS: dict[str, tuple[list[str], dict[str, str]]] = {
    # Empty argv: the Makefile's WEB_CMD, as `make run` starts it.
    "make run (WEB_CMD)": ([], {}),
    "uvicorn -w 2 (one socket shared), a2wsgi 16 threads": (
        ["uvicorn", ASGI, "--workers", "2"],
        {"WEB_THREADS": "16"},
    ),
    "gunicorn -w 2 -k uvicorn.workers.UvicornWorker": (
        ["gunicorn", ASGI, "-w", "2", "-k", "uvicorn.workers.UvicornWorker"],
        {},
    ),
    "gunicorn gthread -w 2 --threads 4 (HTTP only)": (
        [
            *("gunicorn", "config.wsgi:application", "-w", "2"),
            *("-k", "gthread", "--threads", "4"),
        ],
        {},
    ),
}


def start(system: System, argv: list[str], env: dict[str, str]) -> None:
    program, *rest = argv
    rest += ["--port" if program == "uvicorn" else "-b"]
    rest += [str(system.port) if program == "uvicorn" else f"127.0.0.1:{system.port}"]
    if program == "uvicorn":
        rest += ["--host", "127.0.0.1"]
    proc = Proc(
        "web",
        [str(common.VENV_BIN / program), *rest],
        common.bench_env(system.port, **env),
    )
    system.procs.append(proc.start())
    common.wait_until(system.is_ready_http, timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="", help="substring of the layouts to run")
    args = parser.parse_args()
    common.prepare_databases()
    common.setup_django()
    token = common.ensure_users()[common.BENCH_USER]
    common.reset_state()
    (product,) = common.register_products(1)
    body = common.order_body(product)
    for label, (argv, env) in LAYOUTS.items():
        if args.only not in label:
            continue
        with System(*(() if argv else ("web",)), **env) as system:
            if argv:
                start(system, argv, env)
            paths = ("/api/commands/place-order/", "/bench/baseline/")
            for path in paths:
                common.post_load(
                    system.url + path, body, token, seconds=1, connections=4
                )
            results: dict[str, list[common.LoadResult]] = {path: [] for path in paths}
            for _ in range(args.runs):
                for path in paths:
                    results[path].append(
                        common.post_load(
                            system.url + path, body, token, seconds=args.seconds
                        )
                    )
            ours, base = (results[path] for path in paths)
            ratios = [a.rate / b.rate for a, b in zip(ours, base, strict=True)]
            rate, base_rate = (
                statistics.median(r.rate for r in rs) for rs in (ours, base)
            )
            print(
                f"{label:48} place-order {rate:6.0f} baseline {base_rate:6.0f} req/s, "
                f"ratio median {statistics.median(ratios):.2f}x "
                f"(runs {', '.join(f'{r:.2f}' for r in ratios)}), "
                f"p99 {statistics.median(r.p99_ms for r in ours):.0f} / "
                f"{statistics.median(r.p99_ms for r in base):.0f} ms",
                flush=True,
            )
    common.reset_state()


if __name__ == "__main__":
    main()
