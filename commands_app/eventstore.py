"""The event store: append with expected versions, load streams, read in order.

Reading for projections is gap-safe: positions are handed out at insert, not at
commit, so a reader orders by (transaction id, position) and stays below the
oldest transaction still in progress (`pg_snapshot_xmin`). An event whose
transaction has not committed yet is therefore never passed over.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg.errors
from django.db import IntegrityError, OperationalError, connections, transaction

from api.prepared import fetch_all, placeholders
from observability import metrics

from . import outbox, pii
from .domain.events import Event, event_from_data, event_to_data, upcast

DB_ALIAS = "default"
# Notified by every appending transaction, at its commit (and never on rollback):
# the projector relay in the projection workers listens (projections/runner.py).
PROJECTIONS_CHANNEL = "projections"
# The first key of a stream's turn lock, `pg_advisory_xact_lock(STREAM_LOCK_CLASS,
# hashtext(stream_id))` (its own key space: no other lock in this database
# takes a pair of keys with this first one).
STREAM_LOCK_CLASS = 0x65767473  # "evts"


def _take_turns_sql(streams: int) -> str:
    """Return a query taking the turn locks of `streams` stream ids, in their order.

    Every writer passes its distinct stream ids sorted (`_in_turn_order`), so
    that two never wait for each other in a circle. The ids are parameters of
    their own: locks over the rows of the INSERT (a CTE read twice, sorted
    and made distinct) cost four writers 6 % of their appends.
    """
    given = placeholders(streams, "(%s::text)")
    return (
        f"SELECT count(pg_advisory_xact_lock({STREAM_LOCK_CLASS}, hashtext(s))) "  # noqa: S608
        f"FROM (VALUES {given}) AS given(s)"
    )


def _in_turn_order(stream_ids: Iterable[str]) -> list[str]:
    """Return the distinct stream ids in the one order every writer takes turns."""
    return sorted(set(stream_ids))


class ConcurrencyError(Exception):
    """Raise when a stream moved past the version a decision was based on."""


@dataclass(frozen=True, order=True)
class Position:
    """A reader's place in the global order: (transaction id, position).

    The one type of a reader position, on both sides: a projection's
    checkpoint (`projections.models.Checkpoint.to_position`), the event a
    command wrote (`position_of`), the store's head, a rebuild's target.
    Compare positions as a whole: transactions commit in any order, so
    (7, 90) comes before (8, 12).
    """

    tx_id: int = 0
    position: int = 0


@dataclass(frozen=True)
class RecordedEvent:
    position: int
    tx_id: int
    stream_id: str
    version: int
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime

    @property
    def reader_position(self) -> Position:
        """Return where a reader stands after this event (`position` is the int)."""
        return Position(self.tx_id, self.position)

    def to_domain(self) -> Event:
        return event_from_data(self.type, self.data)


@dataclass(frozen=True)
class NewEvents:
    """Events for one stream, valid only while it is at `expected_version`."""

    stream_id: str
    expected_version: int
    events: Sequence[Event] = field(default_factory=tuple)


# A stored event's columns as every read selects them, in `_recorded`'s order.
_SELECTED = (
    ("position", "position"),
    ("tx_id", "tx_id::text::bigint"),
    ("stream_id", "stream_id"),
    ("version", "version"),
    ("type", "type"),
    ("data", "data"),
    ("metadata", "metadata"),
    ("recorded_at", "recorded_at"),
)
_COLUMNS = ", ".join(expression for _name, expression in _SELECTED)


def columns_as(prefix: str) -> tuple[str, tuple[str, ...]]:
    """Return the store's columns aliased `<prefix><name>`, and those names.

    For a statement that reads an event beside rows of its own (an effect's
    claim), under names apart from theirs; `recorded_from_rows` takes the
    values in this order.
    """
    names = tuple(f"{prefix}{name}" for name, _expression in _SELECTED)
    aliased = ", ".join(
        f"{expression} AS {alias}"
        for (_name, expression), alias in zip(_SELECTED, names, strict=True)
    )
    return aliased, names


def append(batches: Iterable[NewEvents], *, metadata: dict[str, Any]) -> list[int]:
    """Insert events in the current transaction; return their positions in order.

    Raise ConcurrencyError when another writer appended to one of the streams
    first: the unique (stream_id, version) constraint decides. The caller must
    then roll back its transaction. Before inserting, the statement takes each
    stream's turn lock (`lock_streams`), so that a writer which lost a race and
    holds its turn is not overtaken again. The effects that the events
    decide (`outbox.schedule`) are inserted in the same transaction, and the
    INSERT itself does `pg_notify(PROJECTIONS_CHANNEL)`, which PostgreSQL
    delivers when the transaction commits: that commit wakes the projections.
    """
    rows: list[Any] = []
    streams: list[str] = []
    types: list[str] = []
    decisive: list[tuple[int, str, str, dict[str, Any]]] = []
    personal: list[pii.Personal] = []
    meta = json.dumps(metadata, default=str)
    # Whether a type decides effects, asked once per type (not per event).
    decides: dict[str, bool] = {}
    for batch in batches:
        version = batch.expected_version
        if batch.events:
            streams.append(batch.stream_id)
        for event in batch.events:
            version += 1
            type_name = event.type_name
            index = len(types)
            types.append(type_name)
            data = event_to_data(event)
            if event.personal_fields:
                personal.append(pii.Personal(index, batch.stream_id, event, data))
            decisive_type = decides.get(type_name)
            if decisive_type is None:
                decisive_type = decides[type_name] = bool(outbox.kinds_for(type_name))
            if decisive_type:
                decisive.append((index, batch.stream_id, type_name, data))
            rows += [batch.stream_id, version, type_name, _to_json(data)]
    if not rows:
        return []
    # Personal fields are stored encrypted with their customer's key; the
    # effects decided above still see the payload as the domain made it.
    # (Most appends have none: product and payment events.)
    if personal:
        for index, sealed in pii.seal_appended(personal).items():
            rows[index * 4 + 3] = _to_json(sealed)
    turns = _in_turn_order(streams)
    with _lost_races():
        positions = _insert(len(types), [*turns, meta, *rows], streams=len(turns))
    if decisive:
        outbox.schedule(
            [
                outbox.Appended(positions[index], stream_id, type_name, data)
                for index, stream_id, type_name, data in decisive
            ],
            traceparent=str(metadata.get("traceparent") or ""),
            using=DB_ALIAS,
        )
    transaction.on_commit(lambda: metrics.events_appended(types), using=DB_ALIAS)
    return positions


def lock_streams(stream_ids: Iterable[str]) -> None:
    """Take these streams' turn until the current transaction ends.

    For a writer that lost a race on them: it takes its turn before reading
    the streams again, and every append to them (`append`) waits for the
    turn, so its next decision cannot be overtaken. Without it, two workers
    running commands on one hot stream back to back can keep one of them
    losing until it gives up. A circle of waits (two turns taken in opposite
    orders, which sorted stream ids avoid) is a ConcurrencyError.
    """
    turns = _in_turn_order(stream_ids)
    if turns:
        with _lost_races():
            fetch_all(DB_ALIAS, _take_turns_sql(len(turns)), turns)


@contextlib.contextmanager
def _lost_races() -> Iterator[None]:
    """Raise ConcurrencyError for a duplicate stream version or a deadlock."""
    try:
        yield
    except (IntegrityError, OperationalError) as exc:
        if isinstance(
            exc.__cause__,
            psycopg.errors.UniqueViolation | psycopg.errors.DeadlockDetected,
        ):
            raise ConcurrencyError(str(exc.__cause__)) from exc
        raise


def json_encoder(*, ensure_ascii: bool = True) -> Callable[[Any], str]:
    """Return a function that writes what `json.dumps(value, ensure_ascii=…)` writes.

    `json.dumps` builds a new C encoder for every call, about 1 µs of each
    event's 2 µs; an append encodes each of its events (and a rebuild each
    JSON value of its staged rows). The encoder is built once here, with the
    arguments `json.JSONEncoder.iterencode` gives it for the defaults, except
    the check for circular references (the values are trees just built).
    Where the C encoder is missing or takes other arguments, this is
    `json.dumps` itself.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return functools.partial(json.dumps, ensure_ascii=ensure_ascii)
    defaults = json.JSONEncoder()
    strings = (
        json.encoder.encode_basestring_ascii
        if ensure_ascii
        else json.encoder.encode_basestring
    )
    try:
        encode = make(
            None,
            defaults.default,
            strings,
            None,
            defaults.key_separator,
            defaults.item_separator,
            False,
            False,
            True,
        )
    except TypeError:  # another Python's signature
        return functools.partial(json.dumps, ensure_ascii=ensure_ascii)
    return lambda value: "".join(encode(value, 0))


_to_json = json_encoder()


def _insert(count: int, params: list[Any], *, streams: int) -> list[int]:
    """Run the INSERT of `count` events as a prepared statement; return positions.

    Bound on the server and prepared once per connection (`api.prepared`), in
    the current transaction: Django's own cursors bind parameters on the
    client, so PostgreSQL would parse and plan every INSERT anew.
    """
    sql = _insert_sql(count, streams)
    return [row[0] for row in fetch_all(DB_ALIAS, sql, params)]


@functools.lru_cache(maxsize=64)
def _insert_sql(count: int, streams: int) -> str:
    """Return the INSERT of `count` events after `streams` turns, and a NOTIFY.

    One statement and round trip. Its parameters: the stream ids in turn
    order, the metadata (the same for every event, sent once), then four per
    event. The turns are a CTE of one row, joined before the rows to insert,
    so taken before the first is inserted (a volatile CTE is run once, never
    inlined). The positions come back in insertion order (one sequence,
    ascending), joined with the one row of `pg_notify`, which PostgreSQL
    holds until the commit (several per transaction are one). psycopg parses
    a statement of more than 50 parameters anew on every call: a 10-event
    append on one stream has 42.
    """
    values = ", ".join(["(%s::text, %s::integer, %s::text, %s::jsonb)"] * count)
    return (
        f"WITH turns AS ({_take_turns_sql(streams)}), "  # noqa: S608
        "appended AS (INSERT INTO events (stream_id, version, type, data, metadata) "
        "SELECT new.*, meta.metadata FROM turns, (SELECT %s::jsonb AS metadata) "
        f"AS meta, (VALUES {values}) AS new (stream_id, version, type, data) "
        "RETURNING position) "
        "SELECT appended.position FROM appended, "
        f"pg_notify('{PROJECTIONS_CHANNEL}', '') ORDER BY appended.position"
    )


def load_streams(stream_ids: Sequence[str]) -> dict[str, list[Event]]:
    """Return the events of each stream in version order (missing → empty)."""
    streams: dict[str, list[Event]] = {stream_id: [] for stream_id in stream_ids}
    if not stream_ids:
        return streams
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT stream_id, type, data FROM events WHERE stream_id = ANY(%s) "
            "ORDER BY stream_id, version",
            [list(stream_ids)],
        )
        rows = cursor.fetchall()
    datas = pii.reveal_all([_json(data) for _stream, _type, data in rows])
    for (stream_id, type_name, _data), data in zip(rows, datas, strict=True):
        streams[stream_id].append(event_from_data(type_name, data))
    return streams


def first_event(stream_id: str) -> Event | None:
    """Return a stream's first event, or None if the stream does not exist."""
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT type, data FROM events WHERE stream_id = %s AND version = 1",
            [stream_id],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return event_from_data(row[0], pii.reveal_one(_json(row[1])))


# --- Read interface for projections -------------------------------------------------


def read_after(checkpoint: Position, *, limit: int = 1000) -> list[RecordedEvent]:
    """Return committed events after `checkpoint` in global order, gap-safe."""
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            READ_AFTER_SQL, [str(checkpoint.tx_id), checkpoint.position, limit]
        )
        return [_recorded(row) for row in _revealed(cursor.fetchall())]


# The order names the table's columns: a bare `tx_id` would be the selected
# `tx_id::text::bigint`, which no index has, and every read would sort all the
# events after the checkpoint (quadratic for a reader far behind).
READ_AFTER_SQL = (
    f"SELECT {_COLUMNS} FROM events "  # noqa: S608 -- constant column list
    "WHERE (tx_id, position) > (%s::text::xid8, %s) "
    "AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) "
    "ORDER BY events.tx_id, events.position LIMIT %s"
)


def read_position(position: int) -> RecordedEvent:
    """Return the committed event at `position` (an effect's deciding event)."""
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM events WHERE position = %s",  # noqa: S608
            [position],
        )
        row = cursor.fetchone()
    if row is None:
        raise LookupError(f"no event at position {position}")
    return recorded_from_rows([row])[0]


def recorded_from_rows(rows: Sequence[Sequence[Any]]) -> list[RecordedEvent]:
    """Return the events of rows of the store's columns (`_COLUMNS`, `columns_as`).

    For a statement that reads events beside its own rows (effects' claim):
    decrypted (or erased) with one key lookup for them all, and upcast as
    every read here.
    """
    return [_recorded(row) for row in _revealed(rows)]


def position_of(position: int) -> Position | None:
    """Return the reader position of the committed event at `position`, if any.

    One primary-key lookup of the event's transaction id, never event data,
    always on the write database ("default", whatever server the read
    database is on): the transaction ids that checkpoints store are the write
    server's. A checkpoint's position alone says nothing about smaller
    positions whose transactions committed later (positions are handed out at
    insert, not at commit), so "is event N applied?" needs N's transaction id.
    """
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT tx_id::text::bigint FROM events WHERE position = %s", [position]
        )
        row = cursor.fetchone()
    return None if row is None else Position(int(row[0]), position)


def last_position() -> int:
    """Return the highest position handed out so far (0 if the store is empty).

    One index lookup on the write database: no committed command can have
    returned a position beyond it (`min_position` refuses those at once).
    """
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT coalesce(max(position), 0) FROM events")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def count_after(checkpoint: Position, *, limit: int = 100_000) -> int:
    """Count readable events after `checkpoint`, up to `limit` (a lag measure)."""
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM events "
            "WHERE (tx_id, position) > (%s::text::xid8, %s) "
            "AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) LIMIT %s) AS behind",
            [str(checkpoint.tx_id), checkpoint.position, limit],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def head() -> Position:
    """Return the position of the last committed event readers may see."""
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT tx_id::text::bigint, position FROM events "
            "WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot()) "
            "ORDER BY events.tx_id DESC, events.position DESC LIMIT 1"
        )
        row = cursor.fetchone()
    return Position(*row) if row else Position()


def _revealed(rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
    """Return rows with their personal fields decrypted, or erased (pii.py)."""
    datas = pii.reveal_all([_json(row[5]) for row in rows])
    return [(*row[:5], data, *row[6:]) for row, data in zip(rows, datas, strict=True)]


def _recorded(row: Sequence[Any]) -> RecordedEvent:
    position, tx_id, stream_id, version, type_name, data, metadata, recorded_at = row
    # Readers see the newest version of each event type (domain/events.py).
    type_name, data = upcast(type_name, _json(data))
    return RecordedEvent(
        position=position,
        tx_id=tx_id,
        stream_id=stream_id,
        version=version,
        type=type_name,
        data=data,
        metadata=_json(metadata),
        recorded_at=recorded_at,
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def read_until(
    after: Position, until: Position, *, limit: int = 5000
) -> list[RecordedEvent]:
    """Return committed events in (after, until] in global order, gap-safe.

    A bulk scan's read (a rebuild's): large chunks bounded by the target, with
    the same visibility rule and order as `read_after`.
    """
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM events "  # noqa: S608 -- constant column list
            "WHERE (tx_id, position) > (%s::text::xid8, %s) "
            "AND (tx_id, position) <= (%s::text::xid8, %s) "
            "AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) "
            "ORDER BY events.tx_id, events.position LIMIT %s",
            [
                str(after.tx_id),
                after.position,
                str(until.tx_id),
                until.position,
                limit,
            ],
        )
        return [_recorded(row) for row in _revealed(cursor.fetchall())]


# --- Read interface for past states ---------------------------------------------------


def stream_head(stream_id: str, *, until: datetime | None = None) -> tuple[int, int]:
    """Return the stream's version now, and its version as of `until`.

    The version as of `until` is the longest run of versions from the first
    recorded at or before `until` (0: the stream did not exist then); without
    `until` it is the version now. (0, 0) means no such stream. A later version
    recorded at an earlier time (its transaction began before the previous one
    committed) ends the run at the first version recorded after `until`.
    """
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(max(version), 0), coalesce(min(version) FILTER "
            "(WHERE recorded_at > %s) - 1, max(version), 0) "
            "FROM events WHERE stream_id = %s",
            [until, stream_id],
        )
        row = cursor.fetchone()
    head = int(row[0]) if row else 0
    return head, (head if until is None or row is None else int(row[1]))


def read_stream(
    stream_id: str, *, after_version: int = 0, until_version: int | None = None
) -> list[RecordedEvent]:
    """Return the stream's events in (after_version, until_version], in order.

    Each is read as projections read it (newest event version, `_recorded`),
    so that a past state is folded from what the read models were built from.
    Without `until_version`, up to the stream's head.
    """
    until = 2**31 - 1 if until_version is None else until_version
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM events "  # noqa: S608 -- constant column list
            "WHERE stream_id = %s AND version > %s AND version <= %s "
            "ORDER BY version",
            [stream_id, after_version, until],
        )
        return [_recorded(row) for row in _revealed(cursor.fetchall())]


def chunk_end(after: Position, until: Position, *, size: int) -> Position:
    """Return where a `read_until(after, until, limit=size)` would end.

    Reads the index only, so that a bulk scan can hand out its next chunks
    (to several readers) before anyone reads them.
    """
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT tx_id::text::bigint, position FROM events "
            "WHERE (tx_id, position) > (%s::text::xid8, %s) "
            "AND (tx_id, position) <= (%s::text::xid8, %s) "
            "AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) "
            "ORDER BY events.tx_id, events.position OFFSET %s LIMIT 1",
            [
                str(after.tx_id),
                after.position,
                str(until.tx_id),
                until.position,
                size - 1,
            ],
        )
        row = cursor.fetchone()
    return Position(*row) if row else until
