"""Rebuild read models aside, without downtime, and verify them.

A rebuild creates shadow tables (`<table>__rebuild`, LIKE the live table
INCLUDING ALL, their non-unique indexes created once they are filled), and
replays the event store into them from the start: one pass over the store for
all the projections rebuilt, each event read and decoded once, in short
transactions of a few thousand events (never one long transaction: the xid
horizon that readers wait on is cluster-wide), while the live tables keep
serving and catching up. Then, for each projection, it takes the projection's
lock, applies the few events between the shadow and the live checkpoint, and
swaps the tables by renaming them, in one short transaction; the live
checkpoint stays as it is. `verify` does the same into `<table>__verify`
tables but compares checksums instead of swapping.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction

from commands_app import eventstore
from commands_app.domain.events import EVENT_TYPES, Event
from commands_app.eventstore import Position, RecordedEvent

from .base import READ_DB, Projector, apply_with_retries, pipelined
from .dead_letters import discarded_positions, resolve_by_rebuild
from .locks import projection_lock
from .models import Checkpoint
from .registry import projector_class, projector_names

REBUILD_SUFFIX = "__rebuild"
VERIFY_SUFFIX = "__verify"
SWAP_LOCK_SECONDS = 30.0
# Events per read of the store and per read-database transaction.
BATCH_SIZE = 5000

Progress = Callable[[Position, Position], None]


class RebuildError(Exception):
    """Raise when an event cannot be applied to the rebuilt tables."""


@dataclass(frozen=True)
class Verification:
    projection: str
    equal: bool
    live: dict[str, str]
    rebuilt: dict[str, str]


@dataclass
class Shadow:
    """One projection being replayed aside: what it skips, how far it got."""

    projector: Projector
    skip: set[int]
    done: Position = field(default_factory=Position)
    target: Position = field(default_factory=Position)

    def wanted(self, chunk: list[RecordedEvent]) -> list[RecordedEvent]:
        """Return the events of a chunk (in reader order) this projection lacks."""
        if chunk and not (
            self.done < chunk[0].checkpoint and chunk[-1].checkpoint <= self.target
        ):
            chunk = [
                recorded
                for recorded in chunk
                if self.done < recorded.checkpoint <= self.target
            ]
        handles = self.projector.handles
        return [
            recorded
            for recorded in chunk
            if recorded.position not in self.skip and handles(recorded)
        ]


def rebuild(
    name: str, *, batch_size: int = BATCH_SIZE, progress: Progress | None = None
) -> None:
    """Rebuild one projection into shadow tables, then swap them in."""
    rebuild_many([name], batch_size=batch_size, progress=progress)


def rebuild_many(
    names: Iterable[str] | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> None:
    """Rebuild projections (all by default) from one pass, then swap each in."""
    with _replayed(names, REBUILD_SUFFIX, batch_size, progress) as shadows:
        for shadow in shadows:
            with _locked_at_live(shadow, batch_size, progress):
                swap_tables(shadow.projector)
                resolve_by_rebuild(shadow.projector.name)


def verify(
    name: str, *, batch_size: int = BATCH_SIZE, progress: Progress | None = None
) -> Verification:
    """Rebuild one projection aside and compare checksums with the live tables."""
    return verify_many([name], batch_size=batch_size, progress=progress)[0]


def verify_many(
    names: Iterable[str] | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> list[Verification]:
    """Rebuild projections aside from one pass; compare each with its live tables."""
    results = []
    with _replayed(names, VERIFY_SUFFIX, batch_size, progress) as shadows:
        for shadow in shadows:
            projector = shadow.projector
            with _locked_at_live(shadow, batch_size, progress):
                live = {table: checksum(table) for table in projector.tables}
                rebuilt = {
                    table: checksum(table + projector.suffix)
                    for table in projector.tables
                }
            results.append(Verification(projector.name, live == rebuilt, live, rebuilt))
    return results


@contextmanager
def _replayed(
    names: Iterable[str] | None,
    suffix: str,
    batch_size: int,
    progress: Progress | None,
) -> Iterator[list[Shadow]]:
    """Fill shadow tables up to each live checkpoint in one pass; drop them after.

    The bulk of the replay runs in short transactions while the live
    projections go on.
    """
    shadows = [
        Shadow(projector_class(name)(suffix=suffix), discarded_positions(name))
        for name in (projector_names() if names is None else names)
    ]
    try:
        deferred = []
        for shadow in shadows:
            create_shadow_tables(shadow.projector)
            deferred += defer_indexes(shadow.projector)
            shadow.target = live_checkpoint(shadow.projector.name)
        fill(shadows, batch_size=batch_size, progress=progress)
        for statement in deferred:
            _execute(statement)
        yield shadows
    finally:
        for shadow in shadows:
            drop_shadow_tables(shadow.projector)


@contextmanager
def _locked_at_live(
    shadow: Shadow, batch_size: int, progress: Progress | None
) -> Iterator[None]:
    """Apply the last stretch up to the live checkpoint; yield with the lock held."""
    name = shadow.projector.name
    with transaction.atomic(using=READ_DB):
        if not projection_lock(name, timeout_seconds=SWAP_LOCK_SECONDS):
            raise RebuildError(f"projection {name} stayed locked")
        shadow.target = live_checkpoint(name)
        fill([shadow], batch_size=batch_size, progress=progress)
        yield


def live_checkpoint(name: str) -> Position:
    row = Checkpoint.objects.filter(name=name).values_list("tx_id", "position")
    found = row.first()
    return Position(*found) if found else Position()


def fill(
    shadows: Sequence[Shadow],
    *,
    batch_size: int,
    progress: Progress | None = None,
) -> None:
    """Apply the events after each shadow's `done` up to its target, by batch.

    The store is read once for all of them, and each event decoded once.
    """
    start = min(shadow.done for shadow in shadows)
    end = max(shadow.target for shadow in shadows)
    if not start < end:
        return
    with closing(chunks(start, end, batch_size)) as read:
        for cursor, events, decoded in read:
            batches = [(shadow.projector, shadow.wanted(events)) for shadow in shadows]
            with transaction.atomic(using=READ_DB):
                if not apply_together(batches, decoded):
                    for projector, batch in batches:
                        apply_or_raise(projector, batch, decoded)
            for shadow in shadows:
                shadow.done = max(shadow.done, min(cursor, shadow.target))
            if progress is not None:
                progress(cursor, end)


Chunk = tuple[Position, list[RecordedEvent], dict[int, Event]]


def chunks(start: Position, end: Position, batch_size: int) -> Generator[Chunk]:
    """Yield the events in (start, end] by chunk: its end, its events, decoded.

    Each event is decoded once for every projection, by position; one that
    does not decode is left out, and fails where a projection applies it. A
    thread reads and decodes the next chunk while the caller applies this one:
    the event store's work and the read database's overlap ours.
    """

    def read(after: Position) -> Chunk | None:
        events = eventstore.read_until(after, end, limit=batch_size)
        if not events:
            return None
        decoded = {}
        for recorded in events:
            if recorded.type in EVENT_TYPES:
                with suppress(Exception):
                    decoded[recorded.position] = recorded.to_domain()
        return events[-1].checkpoint, events, decoded

    with ThreadPoolExecutor(1, thread_name_prefix="rebuild-read") as reader:
        try:
            ahead = reader.submit(read, start)
            while (chunk := ahead.result()) is not None:
                cursor = chunk[0]
                if cursor < end:
                    ahead = reader.submit(read, cursor)
                yield chunk
                if not cursor < end:
                    return
        finally:
            # The thread's own connection to the event store.
            reader.submit(connections.close_all).result()


def apply_together(
    batches: list[tuple[Projector, list[RecordedEvent]]], decoded: dict[int, Event]
) -> bool:
    """Apply each projector's batch in one pipeline; say if all of them went.

    The server runs one projector's statements while the next one stages its
    rows. On a failure (an event that did not decode too) nothing of it stays.
    """
    try:
        with pipelined():
            for projector, batch in batches:
                if batch:
                    projector.apply_decoded(
                        [(recorded, decoded[recorded.position]) for recorded in batch]
                    )
    except Exception:
        return False
    return True


def apply_or_raise(
    projector: Projector, batch: list[RecordedEvent], decoded: dict[int, Event]
) -> None:
    """Apply a batch set-based; on a failure, event by event, naming the event."""
    if apply_together([(projector, batch)], decoded):
        return
    for recorded in batch:
        error = apply_with_retries(projector, recorded)
        if error is not None:
            raise RebuildError(
                f"{projector.name}: event {recorded.position} failed:\n{error}"
            )


def _execute(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connections[READ_DB].cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


def _quote(name: str) -> str:
    return connections[READ_DB].ops.quote_name(name)


def create_shadow_tables(projector: Projector) -> None:
    """Create empty tables like the live ones (columns, defaults, indexes)."""
    drop_shadow_tables(projector)
    for table in projector.tables:
        _execute(
            f"CREATE TABLE {_quote(table + projector.suffix)} "
            f"(LIKE {_quote(table)} INCLUDING ALL)"
        )


def defer_indexes(projector: Projector) -> list[str]:
    """Drop the shadow tables' non-unique indexes; return what creates them again.

    Building an index once over the filled table is cheaper than updating it
    row by row. Unique indexes stay: the upserts rely on them.
    """
    statements = []
    for table in projector.tables:
        rows = _execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass AND NOT x.indisunique "
            "ORDER BY i.relname",
            [table + projector.suffix],
        )
        for name, definition in rows:
            _execute(f"DROP INDEX {_quote(name)}")
            statements.append(definition)
    return statements


def drop_shadow_tables(projector: Projector) -> None:
    for table in projector.tables:
        _execute(f"DROP TABLE IF EXISTS {_quote(table + projector.suffix)}")


def index_definitions(table: str) -> dict[str, str]:
    """Return index name → definition without the index and table names."""
    rows = _execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass ORDER BY i.relname",
        [table],
    )
    return {
        name: re.sub(r"^(CREATE (?:UNIQUE )?INDEX) \S+ ON \S+", r"\1 ON", sql)
        for name, sql in rows
    }


def swap_tables(projector: Projector) -> None:
    """Replace the live tables by the shadow ones, keeping index names.

    Runs in the caller's transaction: renames take an exclusive lock on the live
    table for an instant, so readers wait rather than fail.
    """
    for table in projector.tables:
        shadow = table + projector.suffix
        live_names: dict[str, list[str]] = {}
        for name, definition in index_definitions(table).items():
            live_names.setdefault(definition, []).append(name)
        renames = [
            (name, live_names[definition].pop())
            for name, definition in index_definitions(shadow).items()
            if live_names.get(definition)
        ]
        _execute(f"DROP TABLE {_quote(table)}")
        _execute(f"ALTER TABLE {_quote(shadow)} RENAME TO {_quote(table)}")
        for old, new in renames:
            _execute(f"ALTER INDEX {_quote(old)} RENAME TO {_quote(new)}")


def checksum(table: str) -> str:
    """Return the row count and an md5 of every row's text, in a stable order."""
    rows = _execute(
        "SELECT count(*)::text || ':' || md5(coalesce("  # noqa: S608 -- table quoted
        f"string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {_quote(table)} t"
    )
    return str(rows[0][0])


class ProgressBar:
    """A plain-text progress bar (stderr by default), by event position."""

    def __init__(
        self,
        label: str,
        write: Callable[[str], object] | None = None,
        width: int = 30,
    ) -> None:
        self.label = label
        self.write = write or self._stderr
        self.width = width
        self.shown = False

    @staticmethod
    def _stderr(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    def __call__(self, done: Position, target: Position) -> None:
        share = 1.0 if target.position <= 0 else done.position / target.position
        share = min(1.0, share)
        filled = int(share * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        self.write(
            f"\r{self.label:<24} [{bar}] {share:6.1%} "
            f"position {done.position}/{target.position}"
        )
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.write("\n")
