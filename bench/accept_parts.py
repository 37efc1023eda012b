"""Split the accept's CPU per request: place-order, the baseline view, the throttle.

    .venv/bin/python bench/accept_parts.py [--requests 1500] [--runs 5]

In this process (Django's test client, no web server, no load generator), the
CPU time of one place-order POST and of one POST to the baseline view
(bench/views.py), medians of `--runs` runs; then the same place-order with the
rate limit's Redis call (`throttles.hit`, issue 12's brake) answered by a
constant, and that call's own CPU inside the requests. Figure 1 measures the
whole machine at 16 connections; this says which part of its difference with
the baseline is the throttle's round trip and which is the rest of our view
(validation into a command, the wider row, its hash and trace ids).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

COMMAND = "/api/commands/place-order/"
BASELINE = "/bench/baseline/"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    common.prepare_databases()
    common.setup_django()
    from django.test import Client

    import commands_app.throttling as throttling

    token = common.ensure_users()[common.BENCH_USER]
    common.reset_state()
    (product,) = common.register_products(1)
    body = json.dumps(common.order_body(product))
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")

    def poster(url: str) -> Callable[[], None]:
        def post() -> None:
            response = client.post(url, body, content_type="application/json")
            assert response.status_code == 202, response.content

        return post

    ours = common.cpu_per_call(poster(COMMAND), args.requests, args.runs)
    base = common.cpu_per_call(poster(BASELINE), args.requests, args.runs)
    real_hit = throttling.hit
    spent = [0.0, 0]

    def timed_hit(*hit_args: Any) -> tuple[int, int]:
        started = time.process_time()
        try:
            return real_hit(*hit_args)
        finally:
            spent[0] += time.process_time() - started
            spent[1] += 1

    throttling.hit = timed_hit  # type: ignore[assignment]
    timed = common.cpu_per_call(poster(COMMAND), args.requests, args.runs)
    throttling.hit = lambda *_: (1, 60)
    without = common.cpu_per_call(poster(COMMAND), args.requests, args.runs)
    throttling.hit = real_hit
    common.reset_state()
    hit = spent[0] / spent[1] * 1e6
    rows = (
        ("place-order", ours, f"{ours / base:.2f}x the baseline"),
        ("the baseline view", base, ""),
        (
            "place-order, the throttle's Redis call a constant",
            without,
            f"{without / base:.2f}x the baseline",
        ),
        ("the throttle's Redis call", hit, f"in place-order at {timed:.0f} µs"),
    )
    print(f"CPU µs per request, this process (median of {args.runs} x {args.requests})")
    for name, value, note in rows:
        print(f"  {name:<52} {value:6.0f}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
