"""Snapshots of product streams: every order appends to its products' streams.

Loading a product replays its whole stream, so without snapshots placing an
order would get slower with every order placed before it. A snapshot of a
product's state is stored every `SNAPSHOT_EVERY` events, in the transaction
that appends them (so it never runs ahead of the events, and a lost race rolls
it back too); loading reads the snapshot and only the events after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from django.db import connections

from .domain.decisions import Aggregate
from .domain.events import event_from_data
from .domain.product import Product, product_stream
from .eventstore import DB_ALIAS

SNAPSHOT_EVERY = 100


def load_products(product_ids: Sequence[UUID]) -> dict[UUID, Product]:
    """Return each product from its snapshot (if any) and the events after it."""
    streams = {product_stream(pid): pid for pid in product_ids}
    if not streams:
        return {}
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT stream_id, version, state FROM stream_snapshots "
            "WHERE stream_id = ANY(%s) AND schema = %s",
            [list(streams), Product.SNAPSHOT_SCHEMA],
        )
        snapshots = {row[0]: (row[1], _json(row[2])) for row in cursor.fetchall()}
        after = [snapshots.get(stream, (0, None))[0] for stream in streams]
        cursor.execute(
            "SELECT e.stream_id, e.type, e.data FROM events e "
            "JOIN unnest(%s::text[], %s::int[]) AS s(stream_id, after) "
            "ON e.stream_id = s.stream_id AND e.version > s.after "
            "ORDER BY e.stream_id, e.version",
            [list(streams), after],
        )
        events: dict[str, list[Any]] = {stream: [] for stream in streams}
        for stream_id, type_name, data in cursor.fetchall():
            events[stream_id].append(event_from_data(type_name, _json(data)))
    products = {}
    for stream, pid in streams.items():
        if stream in snapshots:
            version, state = snapshots[stream]
            products[pid] = Product.from_snapshot(pid, version, state, events[stream])
        else:
            products[pid] = Product.from_events(pid, events[stream])
    return products


def save_due(changed: Iterable[Aggregate]) -> None:
    """Store a snapshot of each changed product that is due one.

    Runs in the transaction that appends the products' pending events: the
    snapshot is of the state after them, at the version they bring the stream to.
    """
    rows: list[Any] = []
    for aggregate in changed:
        if not isinstance(aggregate, Product):
            continue
        version = aggregate.version + len(aggregate.pending_events)
        if version - aggregate.snapshot_version >= SNAPSHOT_EVERY:
            rows += [
                aggregate.stream,
                version,
                Product.SNAPSHOT_SCHEMA,
                json.dumps(aggregate.snapshot()),
            ]
    if not rows:
        return
    values = ", ".join(["(%s, %s, %s, %s::jsonb)"] * (len(rows) // 4))
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "INSERT INTO stream_snapshots (stream_id, version, schema, state) "  # noqa: S608 -- placeholders only
            f"VALUES {values} ON CONFLICT (stream_id) DO UPDATE SET "
            "version = EXCLUDED.version, schema = EXCLUDED.schema, "
            "state = EXCLUDED.state WHERE stream_snapshots.version < EXCLUDED.version",
            rows,
        )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
