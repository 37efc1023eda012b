"""Rebuild read models aside, without downtime, and verify them.

A rebuild creates shadow tables (`<table>__rebuild`, LIKE the live table
INCLUDING ALL), replays the event store into them from the start in short
batches (never one long transaction: the xid horizon that readers wait on is
cluster-wide), while the live tables keep serving and catching up. It then
takes the projection's lock, applies the few events between the shadow and
the live checkpoint, and swaps the tables by renaming them, in one short
transaction; the live checkpoint stays as it is. `verify` does the same into
`<table>__verify` tables but compares checksums instead of swapping.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction

from commands_app import eventstore
from commands_app.eventstore import Checkpoint as Position
from commands_app.eventstore import RecordedEvent

from .base import READ_DB, Projector, apply_with_retries, pipelined
from .dead_letters import discarded_positions, resolve_by_rebuild
from .locks import projection_lock
from .models import Checkpoint
from .registry import projector_class

REBUILD_SUFFIX = "__rebuild"
VERIFY_SUFFIX = "__verify"
SWAP_LOCK_SECONDS = 30.0

Progress = Callable[[Position, Position], None]


class RebuildError(Exception):
    """Raise when an event cannot be applied to the rebuilt tables."""


@dataclass(frozen=True)
class Verification:
    projection: str
    equal: bool
    live: dict[str, str]
    rebuilt: dict[str, str]


def rebuild(
    name: str, *, batch_size: int = 500, progress: Progress | None = None
) -> None:
    """Rebuild one projection into shadow tables, then swap them in."""
    projector = projector_class(name)(suffix=REBUILD_SUFFIX)
    create_shadow_tables(projector)
    try:
        with _locked_at_live(projector, batch_size, progress):
            swap_tables(projector)
            resolve_by_rebuild(name)
    finally:
        drop_shadow_tables(projector)


def verify(
    name: str, *, batch_size: int = 500, progress: Progress | None = None
) -> Verification:
    """Rebuild one projection aside and compare checksums with the live tables."""
    projector = projector_class(name)(suffix=VERIFY_SUFFIX)
    create_shadow_tables(projector)
    try:
        with _locked_at_live(projector, batch_size, progress):
            live = {table: checksum(table) for table in projector.tables}
            rebuilt = {
                table: checksum(table + projector.suffix) for table in projector.tables
            }
    finally:
        drop_shadow_tables(projector)
    return Verification(name, live == rebuilt, live, rebuilt)


@contextmanager
def _locked_at_live(
    projector: Projector, batch_size: int, progress: Progress | None
) -> Iterator[None]:
    """Fill the shadow tables up to the live checkpoint; yield with the lock held.

    The bulk of the replay runs in short transactions while the live projection
    goes on; only the last stretch runs in the locked transaction.
    """
    skip = discarded_positions(projector.name)
    cursor = fill(
        projector,
        Position(),
        live_checkpoint(projector.name),
        batch_size=batch_size,
        skip=skip,
        progress=progress,
    )
    with transaction.atomic(using=READ_DB):
        if not projection_lock(projector.name, timeout_seconds=SWAP_LOCK_SECONDS):
            raise RebuildError(f"projection {projector.name} stayed locked")
        fill(
            projector,
            cursor,
            live_checkpoint(projector.name),
            batch_size=batch_size,
            skip=skip,
            progress=progress,
        )
        yield


def live_checkpoint(name: str) -> Position:
    row = Checkpoint.objects.filter(name=name).values_list("tx_id", "position")
    found = row.first()
    return Position(*found) if found else Position()


def fill(
    projector: Projector,
    start: Position,
    target: Position,
    *,
    batch_size: int,
    skip: set[int],
    progress: Progress | None = None,
) -> Position:
    """Apply the events in (start, target] to the projector's tables, by batch."""
    cursor = start
    while cursor < target:
        events = eventstore.read_after(cursor, limit=batch_size)
        inside = [event for event in events if event.checkpoint <= target]
        if not inside:
            break
        applicable = [
            recorded
            for recorded in inside
            if recorded.position not in skip and projector.handles(recorded)
        ]
        with transaction.atomic(using=READ_DB):
            if not apply_all(projector, applicable):
                for recorded in applicable:
                    error = apply_with_retries(projector, recorded)
                    if error is not None:
                        raise RebuildError(
                            f"{projector.name}: event {recorded.position} failed:\n"
                            f"{error}"
                        )
            projector.flush()
        cursor = inside[-1].checkpoint
        if progress is not None:
            progress(cursor, target)
    return cursor


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


def apply_all(projector: Projector, events: list[RecordedEvent]) -> bool:
    """Apply a batch with its statements pipelined; say if every event went."""
    if not events:
        return True
    try:
        with pipelined():
            for recorded in events:
                projector.apply(recorded)
    except Exception:
        return False
    return True
