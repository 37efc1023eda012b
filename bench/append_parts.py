"""Split an append's CPU per transaction: ours, a raw notifying writer, the parts.

    .venv/bin/python bench/append_parts.py [--transactions 2000] [--runs 5]

In this process, the CPU time of one transaction of 10 events (figure 4's
restocks, medians of `--runs` runs): our `eventstore.append` inside
`transaction.atomic()`, as figure 4 times it, and figure 4's raw psycopg writer
with our NOTIFY in its INSERT (a notifying writer's ceiling). Then the parts of
ours that the raw writer does not have: the ten domain events turned into the
rows' JSON (`event_to_data` and the encoder, what every append must do), and
Django's transaction around one prepared statement (`atomic()`, autocommit off
and on again, the commit hooks) against raw psycopg's BEGIN, the same
statement and COMMIT. Figure 4 measures the whole machine with four writers;
this says which part of its difference with the notifying writer is which.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, fig_eventstore

PER_TX = 10


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    common.prepare_databases()
    common.setup_django()
    import psycopg
    from django.db import transaction

    from api.prepared import fetch_all
    from commands_app.domain.events import ProductRestocked, event_to_data
    from commands_app.eventstore import DB_ALIAS, _to_json

    common.reset_state()
    fig_eventstore.prepare()
    n, runs = args.transactions, args.runs
    ours = common.cpu_per_call(fig_eventstore._ours(PER_TX), n, runs)
    raw = common.cpu_per_call(fig_eventstore._raw(PER_TX, "notify"), n, runs)

    product = uuid.uuid4()
    events = [ProductRestocked(product_id=product, quantity=1)] * PER_TX

    def serialise() -> None:
        for event in events:
            _to_json(event_to_data(event))

    def django_tx() -> None:
        with transaction.atomic(using=DB_ALIAS):
            fetch_all(DB_ALIAS, "SELECT %s::integer", [1])

    conn = psycopg.connect(f"{common.PG}/{common.DB_NAME}")

    def raw_tx() -> None:
        with conn.cursor() as cursor:
            cursor.execute("SELECT %s::integer", [1], prepare=True)
            cursor.fetchall()
        conn.commit()

    dumped = common.cpu_per_call(serialise, n, runs)
    in_django = common.cpu_per_call(django_tx, n, runs)
    in_raw = common.cpu_per_call(raw_tx, n, runs)
    conn.close()
    common.reset_state()
    rows = (
        ("ours: eventstore.append in atomic()", ours, f"{ours / raw:.2f}x raw"),
        ("raw psycopg with our NOTIFY", raw, ""),
        ("  ours less raw", ours - raw, ""),
        (f"{PER_TX} events to their rows' JSON", dumped, ""),
        ("a transaction of one statement: Django's atomic()", in_django, ""),
        ("a transaction of one statement: raw psycopg", in_raw, ""),
        ("  Django's transaction less raw", in_django - in_raw, ""),
    )
    print(
        f"CPU µs per transaction of {PER_TX} events, this process"
        f" (median of {runs} x {n})"
    )
    for name, value, note in rows:
        print(f"  {name:<52} {value:6.0f}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
