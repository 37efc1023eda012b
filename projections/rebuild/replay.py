"""Fill shadow tables from the event store, chunk by chunk, in short transactions.

Chunks come staged from `readahead.py` (COPY text per statement, see
`staging.py`); each goes to the read database in a transaction of its own. A
chunk that does not stage or send goes again event by event, the live way, and
the first event that fails stops the rebuild with its position.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field

from django.db import connections, transaction

from commands_app import eventstore
from commands_app.domain.events import EVENT_TYPES, Event
from commands_app.eventstore import Position, RecordedEvent

from ..base import READ_DB, Projector, apply_with_retries, pipelined
from .readahead import Chunk, decode, inline_chunks, reader_chunks
from .staging import Stages, Statement

Progress = Callable[[Position, Position], None]
# Reader processes of a rebuild, one per core, at most two: the rebuilding
# process sends while they stage. Forking them leaves the caller's database
# sessions, and the session-level locks held there, as they were.
READERS = min(2, os.cpu_count() or 1)


class RebuildError(Exception):
    """Raise when an event cannot be applied to the rebuilt tables."""


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
            self.done < chunk[0].reader_position
            and chunk[-1].reader_position <= self.target
        ):
            chunk = [
                recorded
                for recorded in chunk
                if self.done < recorded.reader_position <= self.target
            ]
        # What `projector.handles` says, by type name: one set lookup per event.
        handled = {
            name
            for name, event_class in EVENT_TYPES.items()
            if event_class in self.projector.handlers
        }
        skip = self.skip
        return [
            recorded
            for recorded in chunk
            if recorded.type in handled and recorded.position not in skip
        ]


def fill(
    shadows: Sequence[Shadow],
    *,
    batch_size: int,
    progress: Progress | None = None,
    readers: int | None = None,
) -> None:
    """Apply the events after each shadow's `done` up to its target, by chunk.

    The store is read once for all of them, and each event decoded once.
    Reader processes stage the chunks unless `readers` is 0 or a transaction
    is open (the last stretch of a swap runs under the projection's lock).
    """
    start = min(shadow.done for shadow in shadows)
    end = max(shadow.target for shadow in shadows)
    if not start < end:
        return
    if readers is None:
        readers = READERS
    if readers and _can_fork():
        source = reader_chunks(shadows, start, end, batch_size, readers)
    else:
        source = inline_chunks(shadows, start, end, batch_size)
    stages = Stages()
    with closing(source) as chunks:
        for chunk in chunks:
            with transaction.atomic(using=READ_DB):
                if chunk.statements is None or not send(stages, chunk.statements):
                    apply_chunk(shadows, chunk)
            for shadow in shadows:
                shadow.done = max(shadow.done, min(chunk.cursor, shadow.target))
            if progress is not None:
                progress(chunk.cursor, end)
    stages.drop()


def _can_fork() -> bool:
    return not multiprocessing.current_process().daemon and not any(
        connection.in_atomic_block for connection in connections.all()
    )


def send(stages: Stages, statements: list[list[Statement]]) -> bool:
    """Send a chunk's staged statements in one savepoint; say if all went."""
    try:
        with transaction.atomic(using=READ_DB):
            for batch in statements:
                stages.send(batch)
    except Exception:
        return False
    return True


def apply_chunk(shadows: Sequence[Shadow], chunk: Chunk) -> None:
    """Apply a chunk the live way: set-based, else event by event."""
    events = eventstore.read_until(chunk.after, chunk.cursor, limit=chunk.count)
    decoded = decode(events)
    for shadow in shadows:
        apply_or_raise(shadow.projector, shadow.wanted(events), decoded)


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
