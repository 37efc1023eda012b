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

The modules, by what changes together: this one orchestrates; `shadow.py` is
the shadow tables' DDL; `readahead.py` reads and stages chunks in reader
processes; `staging.py` turns the projectors' writes into COPY; `replay.py`
sends the chunks; `progress_bar.py` draws the command line's bar.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import transaction

from ..base import READ_DB
from ..dead_letters import discarded_positions, resolve_by_rebuild
from ..locks import projection_lock
from ..models import Checkpoint
from ..registry import projector_class, projector_names
from .progress_bar import ProgressBar
from .replay import Position, Progress, RebuildError, Shadow, fill
from .shadow import (
    checksum,
    create_shadow_tables,
    defer_indexes,
    drop_shadow_tables,
    execute,
    index_definitions,
    swap_tables,
)

__all__ = [
    "BATCH_SIZE",
    "Progress",
    "ProgressBar",
    "RebuildError",
    "Verification",
    "checksum",
    "create_shadow_tables",
    "drop_shadow_tables",
    "index_definitions",
    "rebuild",
    "rebuild_many",
    "swap_tables",
    "verify",
    "verify_many",
]

REBUILD_SUFFIX = "__rebuild"
VERIFY_SUFFIX = "__verify"
SWAP_LOCK_SECONDS = 30.0
# Events per read of the store and per read-database transaction.
BATCH_SIZE = 5000


@dataclass(frozen=True)
class Verification:
    projection: str
    equal: bool
    live: dict[str, str]
    rebuilt: dict[str, str]


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
            execute(statement)
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
