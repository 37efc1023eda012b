"""Snapshots of product streams: every order appends to its products' streams.

Loading a product replays its whole stream, so without snapshots placing an
order would get slower with every order placed before it. A snapshot of a
product's state is stored every `SNAPSHOT_EVERY` events, in the transaction
that appends them (so it never runs ahead of the events, and a lost race rolls
it back too); loading reads the snapshot and only the events after it, in the
same statement.

Every snapshot stored is also kept in `stream_snapshot_history` (same
statement): the latest one cannot answer a past-state read below it, the kept
ones can (`kept_snapshot`, used by `projections.past`).

Formats (`Product.SNAPSHOT_SCHEMA`): schema 2 is the product's O(1) state.
Schema 1 also held `reserved_for`, every open reservation of the product (the
430 KB of a product with 10,000 orders); the rest of it means what schema 2
means. The loader is tolerant of schema 1: it has PostgreSQL drop
`reserved_for` before sending the row, loads the rest, and marks the product
as having no current snapshot, so that the next append stores a schema 2 one
in its place. Any other schema is ignored (the stream is replayed).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from django.db import connections

from api.prepared import fetch_all, placeholders

from . import eventstore, pii
from .domain.aggregate import AnyAggregate
from .domain.events import EVENT_TYPES, Event, event_from_data
from .domain.product import Product, product_stream
from .eventstore import DB_ALIAS, RecordedEvent

# A snapshot is a few hundred bytes now (the state is O(1)), written with the
# events; decoding the events after it costs about 30 us each on every load.
SNAPSHOT_EVERY = 20
# Schemas the loader reads: older ones are upgraded in `_load_sql`.
READABLE_SCHEMAS = (1, Product.SNAPSHOT_SCHEMA)


@functools.lru_cache(maxsize=128)
def _load_sql(streams: int) -> str:
    """Return the load of `streams` streams: snapshots, then the events after them.

    One round trip: each stream's snapshot (type NULL) then its events after
    it, in version order (the snapshot row sorts first as events follow its
    version). Prepared, with one parameter per stream
    (`api.prepared.placeholders`): with the ids in an array, PostgreSQL
    planned it anew on every call, 0.35 ms of its CPU per command, more than
    running it.
    """
    given = placeholders(streams, "(%s::text)")
    schemas = ", ".join(str(schema) for schema in READABLE_SCHEMAS)
    return f"""
WITH given (stream_id) AS (VALUES {given}),
snap AS MATERIALIZED (
    SELECT s.stream_id, s.version, s.schema, s.state - 'reserved_for' AS state
    FROM given JOIN stream_snapshots AS s ON s.stream_id = given.stream_id
    WHERE s.schema IN ({schemas})
), wanted AS (
    SELECT w.stream_id, coalesce(s.version, 0) AS after
    FROM given AS w
    LEFT JOIN snap AS s USING (stream_id)
)
SELECT stream_id, version, NULL AS type, state AS data, schema FROM snap
UNION ALL
SELECT e.stream_id, e.version, e.type, e.data, NULL
FROM wanted AS w
JOIN events AS e ON e.stream_id = w.stream_id AND e.version > w.after
ORDER BY 1, 2
"""  # noqa: S608 -- placeholders and the schemas' integers only


# One statement: each stream's latest snapshot, and the same rows kept in
# `stream_snapshot_history` for past-state reads (`kept_snapshot`).
_SAVE_ROW = "(%s, %s::integer, %s::smallint, %s::jsonb)"
_SAVE_SQL = """
WITH due (stream_id, version, schema, state) AS (VALUES {values}),
latest AS (
    INSERT INTO stream_snapshots (stream_id, version, schema, state)
    SELECT * FROM due
    ON CONFLICT (stream_id) DO UPDATE SET
        version = EXCLUDED.version, schema = EXCLUDED.schema, state = EXCLUDED.state
    WHERE stream_snapshots.version < EXCLUDED.version
)
INSERT INTO stream_snapshot_history (stream_id, version, schema, state)
SELECT * FROM due ON CONFLICT DO NOTHING
"""


def load_products(product_ids: Sequence[UUID]) -> dict[UUID, Product]:
    """Return each product from its snapshot (if any) and the events after it."""
    return load(product_ids)[0]


def load(
    product_ids: Sequence[UUID], *, streams: Sequence[str] = ()
) -> tuple[dict[UUID, Product], dict[str, list[Event]]]:
    """Return products as `load_products` does, and the events of `streams`.

    `streams` are streams without snapshots (an order's), returned whole:
    reading them in the same statement saves place-order a round trip.
    """
    by_stream = {product_stream(pid): pid for pid in product_ids}
    wanted = list(dict.fromkeys([*by_stream, *streams]))
    if not wanted:
        return {}, {}
    found: dict[str, tuple[int, int, dict[str, Any]]] = {}
    events: dict[str, list[Event]] = {stream: [] for stream in wanted}
    rows = fetch_all(DB_ALIAS, _load_sql(len(wanted)), wanted)
    for stream_id, version, type_name, data, schema in rows:
        if type_name is None:
            found[stream_id] = (version, schema, _json(data))
        else:
            data = _json(data)
            if pii.is_sealed(data):
                data = pii.reveal_one(data)
            events[stream_id].append(event_from_data(type_name, data))
    products = {}
    for stream, pid in by_stream.items():
        if stream not in found:
            products[pid] = Product.from_events(pid, events[stream])
            continue
        version, schema, state = found[stream]
        product = Product.from_snapshot(pid, version, state, events[stream])
        if schema != Product.SNAPSHOT_SCHEMA:
            # Due again: the next append replaces it with the current format.
            product.snapshot_version = 0
        products[pid] = product
    return products, {stream: events[stream] for stream in streams}


def save_due(changed: Iterable[AnyAggregate]) -> None:
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
    values = ", ".join([_SAVE_ROW] * (len(rows) // 4))
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(_SAVE_SQL.format(values=values), rows)


def kept_snapshot(
    product_id: UUID, *, version: int
) -> tuple[int, dict[str, Any]] | None:
    """Return the product's newest kept snapshot at or below `version`, if any.

    A past-state read folds only the events after it, up to `version`: a
    product's stream grows with every order, and a plain fold of it with every
    event. Returns (its version, its state) in a readable schema.
    """
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT version, state - 'reserved_for' FROM stream_snapshot_history "
            "WHERE stream_id = %s AND version <= %s AND schema = ANY(%s) "
            "ORDER BY version DESC LIMIT 1",
            [product_stream(product_id), version, list(READABLE_SCHEMAS)],
        )
        row = cursor.fetchone()
    return None if row is None else (int(row[0]), _json(row[1]))


def load_product_as_of(
    product_id: UUID, *, version: int, use_snapshots: bool = True
) -> tuple[dict[str, Any], RecordedEvent] | None:
    """Return the product's state after `version` (its head if beyond) and that event.

    The published past-state loader of the write side (`projections.past` calls
    it): folds from the nearest kept snapshot at or below `version` and the
    events after it (with `use_snapshots` False, from the first event: the same
    state). The state is the product's `id` and `snapshot()` fields (`sku`,
    `name`, `price_cents`, `available`). None if the product has no events.
    """
    kept = kept_snapshot(product_id, version=version) if use_snapshots else None
    start = kept[0] if kept else 0
    # From the snapshot's own event: its time is the answer's if none follows.
    events = eventstore.read_stream(
        product_stream(product_id),
        after_version=max(start - 1, 0),
        until_version=version,
    )
    if not events:
        return None
    after = [
        recorded.to_domain()
        for recorded in events
        if recorded.version > start and recorded.type in EVENT_TYPES
    ]
    if kept is None:
        product = Product.from_events(product_id, after)
    else:
        product = Product.from_snapshot(product_id, start, kept[1], after)
    return {"id": product_id, **product.snapshot()}, events[-1]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
