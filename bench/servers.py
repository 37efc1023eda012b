"""The web server choice: a2wsgi threads inside uvicorn (what `make run` serves)
against gunicorn sync workers for HTTP, at the accept figure's load.

    .venv/bin/python bench/servers.py [--seconds 5]

Prints req/s and p99 of place-order and of the baseline view for each layout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.common import Proc, System

LAYOUTS = {
    "uvicorn -w2, a2wsgi 16 threads (make run)": {"WEB_THREADS": "16"},
    "uvicorn -w2, a2wsgi 4 threads": {"WEB_THREADS": "4"},
    "gunicorn sync -w2": {"gunicorn": "sync"},
    "gunicorn gthread -w2 --threads 4": {"gunicorn": "gthread"},
}


def gunicorn(system: System, worker: str) -> Proc:
    argv = [
        str(common.VENV_BIN / "gunicorn"),
        "config.wsgi:application",
        "-b",
        f"127.0.0.1:{system.port}",
        "-w",
        "2",
        "-k",
        worker,
    ]
    if worker == "gthread":
        argv += ["--threads", "4"]
    proc = Proc("gunicorn", argv, common.bench_env(system.port)).start()
    system.procs.append(proc)
    return proc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    common.prepare_databases()
    common.setup_django()
    token = common.ensure_users()[common.BENCH_USER]
    common.reset_state()
    (product,) = common.register_products(1)
    body = common.order_body(product)
    for label, options in LAYOUTS.items():
        worker = options.pop("gunicorn", None)
        with System(*(() if worker else ("web",)), **options) as system:
            if worker:
                proc = gunicorn(system, worker)
                system.procs[-1] = proc
                common.wait_until(lambda: system.is_ready_http(), timeout=60)
            for path in ("/api/commands/place-order/", "/bench/baseline/"):
                url = system.url + path
                common.post_load(url, body, token, seconds=1, connections=4)
                result = common.post_load(url, body, token, seconds=args.seconds)
                print(
                    f"{label:42} {path:28} {result.rate:7.0f} req/s "
                    f"p99 {result.p99_ms:6.1f} ms",
                    flush=True,
                )
    common.reset_state()


if __name__ == "__main__":
    main()
