"""Read, decode and stage the store's events by chunk, ahead of the writes.

A chunk's Python work (decoding the events, running the projectors' handlers,
turning their rows into COPY text) is most of a rebuild's time. Reader
processes do it while the rebuilding process sends the previous chunks to the
read database, so that both cores work: the rebuilding process hands out
chunk boundaries (read from the store's index alone), each reader reads and
stages the chunks it is given, and the chunks come back in the store's order.
Each event is read and decoded once, by one reader, for every projection.

Without reader processes (`readers=0`, or inside a transaction, which a forked
process must not share) the same staging runs in the rebuilding process.

The readers are forked, and the rebuilding process keeps its database
connections open: its caller's session state there (session-level advisory
locks such as `runner.PAUSE_LOCK`) outlives the rebuild. Each reader sets the
connections it inherited aside, unclosed, and opens its own.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue
import traceback
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

import psycopg
from django.db import connections
from psycopg.pq import Format

from commands_app import eventstore
from commands_app.domain.events import EVENT_TYPES, Event
from commands_app.eventstore import Position, RecordedEvent

from .staging import Statement, stage

if TYPE_CHECKING:
    from .replay import Shadow

# Chunks handed out ahead per reader: one staged while the last one is sent.
AHEAD_PER_READER = 2
# How often an idle reader checks that the rebuilding process is still there.
PARENT_CHECK_SECONDS = 5.0


class ReaderError(Exception):
    """Raise when a reader process fails or dies."""


@dataclass(frozen=True)
class Chunk:
    """Events in (after, cursor] of the store, staged for each shadow.

    `statements` holds each shadow's writes in order, or is None when a chunk
    could not be staged (an event that does not decode, a handler that fails):
    the caller then applies it event by event, which names the failing event.
    """

    after: Position
    cursor: Position
    count: int
    statements: list[list[Statement]] | None


def decode(events: Sequence[RecordedEvent]) -> dict[int, Event]:
    """Decode each event of a known type once; leave out those that fail."""
    known = [recorded for recorded in events if recorded.type in EVENT_TYPES]
    with suppress(Exception):
        return {recorded.position: recorded.to_domain() for recorded in known}
    # Some event does not decode: again one by one, without it.
    decoded = {}
    for recorded in known:
        with suppress(Exception):
            decoded[recorded.position] = recorded.to_domain()
    return decoded


@contextmanager
def collections_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector meanwhile (a chunk's staging).

    A chunk allocates a few hundred thousand objects (rows read, payloads,
    events, staged rows) that live until it is staged: each of the many
    collections they trigger scans them all again, and every older object too,
    a third of a reader's time. They hold no reference cycles, so reference
    counting frees them; the collector runs again after the chunk.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def stage_chunk(
    shadows: Sequence[Shadow], after: Position, until: Position, batch_size: int
) -> Chunk | None:
    """Read the events in (after, until], at most `batch_size`, and stage them."""
    with collections_paused():
        return _stage_chunk(shadows, after, until, batch_size)


def _stage_chunk(
    shadows: Sequence[Shadow], after: Position, until: Position, batch_size: int
) -> Chunk | None:
    events = eventstore.read_until(after, until, limit=batch_size)
    if not events:
        return None
    wanted = [shadow.wanted(events) for shadow in shadows]
    # Only what some shadow applies is decoded, each event once for all of them.
    needed = {recorded.position: recorded for batch in wanted for recorded in batch}
    decoded = decode(list(needed.values()))
    statements: list[list[Statement]] | None = []
    try:
        for shadow, batch in zip(shadows, wanted, strict=True):
            pairs = [(recorded, decoded[recorded.position]) for recorded in batch]
            statements.append(stage(shadow.projector, pairs))  # type: ignore[union-attr]
    except Exception:
        statements = None
    return Chunk(after, events[-1].reader_position, len(events), statements)


def inline_chunks(
    shadows: Sequence[Shadow], start: Position, end: Position, batch_size: int
) -> Generator[Chunk]:
    """Stage the chunks of (start, end] in this process, one after the other."""
    after = start
    while after < end:
        chunk = stage_chunk(shadows, after, end, batch_size)
        if chunk is None:
            return
        yield chunk
        after = chunk.cursor


def reader_chunks(
    shadows: Sequence[Shadow],
    start: Position,
    end: Position,
    batch_size: int,
    readers: int,
) -> Generator[Chunk]:
    """Stage the chunks of (start, end] in `readers` forked processes, in order.

    The caller must hold no transaction (a forked process must not share it).
    Its connections stay open: the readers open their own.
    """
    context = multiprocessing.get_context("fork")
    inboxes: list[Any] = [context.Queue() for _ in range(readers)]
    outboxes: list[Any] = [context.Queue() for _ in range(readers)]
    processes = [
        context.Process(
            target=_read,
            args=(shadows, batch_size, inboxes[index], outboxes[index], os.getpid()),
            name=f"rebuild-reader-{index}",
            daemon=True,
        )
        for index in range(readers)
    ]
    for process in processes:
        process.start()
    pending: deque[int] = deque()
    after, turn = start, 0

    def hand_out() -> None:
        nonlocal after, turn
        if not after < end:
            return
        until = eventstore.chunk_end(after, end, size=batch_size)
        inboxes[turn].put((after, until))
        pending.append(turn)
        after, turn = until, (turn + 1) % readers

    finished = False
    try:
        for _ in range(readers * AHEAD_PER_READER):
            hand_out()
        while pending:
            index = pending.popleft()
            result = _receive(outboxes[index], processes[index])
            hand_out()
            if result is not None:
                yield result
        finished = True
    finally:
        for inbox, process in zip(inboxes, processes, strict=True):
            if finished:
                inbox.put(None)
            else:
                # Stopped early (a failure, or the caller's): drop the work ahead.
                process.terminate()
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()


# The database connections a reader inherited from the rebuilding process.
_INHERITED: list[Any] = []


def own_connections() -> None:
    """Give this forked process database connections of its own.

    The connections it inherited are the rebuilding process's sessions:
    closing one here would end that session for both processes (psycopg sends
    the server a Terminate), and with it the session's locks. Each is set
    aside unclosed, for this process's lifetime (psycopg never ends a session
    from a process other than the one that opened it, even when freed), and a
    new wrapper with the same settings connects on first use.
    """
    for alias in connections:
        inherited = connections[alias]
        _INHERITED.append(inherited)
        fresh = type(inherited)(inherited.settings_dict, alias)
        fresh.execute_wrappers.append(c_timestamps)
        connections[alias] = fresh


# psycopg's own loader of timestamptz text (its C one, when it has it).
_TIMESTAMPTZ = psycopg.adapters.get_loader(
    psycopg.adapters.types["timestamptz"].oid, Format.TEXT
)


def c_timestamps(
    execute: Callable[..., Any],
    sql: str,
    params: Any,
    many: bool,
    context: dict[str, Any],
) -> Any:
    """Read timestamptz values with psycopg's loader, when it gives what Django's does.

    Django's loader, psycopg's pure-Python one forcing Django's time zone on
    the result, costs about 4 us per value: most of a reader's read of the
    store. When Django's and the session's time zone are both UTC, psycopg's
    loader gives the same datetimes (tzinfo `datetime.UTC`) in a fraction of it.
    """
    connection = context["connection"]
    cursor = context["cursor"].cursor
    if connection.timezone is UTC and cursor.connection.info.timezone is UTC:
        cursor.adapters.register_loader("timestamptz", _TIMESTAMPTZ)
    return execute(sql, params, many, context)


def _receive(outbox: Any, process: Any) -> Chunk | None:
    while True:
        try:
            result = outbox.get(timeout=1.0)
        except queue.Empty:
            if not process.is_alive():
                raise ReaderError(f"{process.name} died") from None
            continue
        if isinstance(result, str):
            raise ReaderError(f"{process.name} failed:\n{result}")
        return result


def _read(
    shadows: Sequence[Shadow], batch_size: int, inbox: Any, outbox: Any, parent: int
) -> None:
    """Stage each range the inbox gives until told to stop (a reader process)."""
    own_connections()
    # What it inherited is never collected here: not scanned by each
    # collection either (nor copied, page by page, for the collector's marks).
    gc.freeze()
    try:
        while True:
            try:
                job = inbox.get(timeout=PARENT_CHECK_SECONDS)
            except queue.Empty:
                if os.getppid() != parent:
                    return
                continue
            if job is None:
                return
            outbox.put(stage_chunk(shadows, job[0], job[1], batch_size))
    except Exception:
        outbox.put(traceback.format_exc())
    finally:
        connections.close_all()
