"""The runner: apply events to each projection from its checkpoint, in batches.

Each batch and its checkpoint commit in one short transaction of the read
database, under the projection's advisory lock, so that one runner at a time
applies a projection whatever the number of workers. After each batch, the
commands that every projection has now applied are announced.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction

from commands_app import eventstore
from commands_app.eventstore import RecordedEvent
from observability import metrics, tracing

from .announce import announce_projected
from .base import READ_DB, Projector, apply_with_retries, pipelined, retry_delays
from .dead_letters import blocked_streams, park
from .lag import report_lag
from .locks import projection_lock
from .models import Checkpoint, DeadLetterStatus
from .registry import projector_class, projector_names

logger = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 5.0


@dataclass
class BatchResult:
    read: int = 0
    parked: int = 0
    locked_out: bool = False


@dataclass
class CatchUpResult:
    applied: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def ensure_checkpoints(names: tuple[str, ...] | list[str]) -> None:
    """Create missing checkpoints at the start of the event store."""
    Checkpoint.objects.bulk_create(
        [Checkpoint(name=name) for name in names], ignore_conflicts=True
    )


def catch_up(
    name: str | None = None,
    batch_size: int = 500,
    *,
    max_seconds: float | None = None,
) -> CatchUpResult:
    """Apply new events to one projection (or all), until a batch comes back short.

    The projections take a batch each in turn, and the commands that all of them
    have applied are announced once per round: one announcement per wake-up
    when the projections are nearly caught up, not one per projection.
    """
    names = [name] if name else list(projector_names())
    ensure_checkpoints(list(projector_names()))
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    result = CatchUpResult(applied=dict.fromkeys(names, 0))
    projectors = {projection: projector_class(projection)() for projection in names}
    active = list(names)
    while active:
        applied = False
        for projection in list(active):
            try:
                batch = run_batch(projectors[projection], batch_size)
            except Exception as exc:
                logger.exception("projection %s failed", projection)
                result.errors[projection] = repr(exc)
                Checkpoint.objects.filter(name=projection).update(
                    last_error=f"runner: {exc!r}"[:2000]
                )
                active.remove(projection)
                continue
            result.applied[projection] += batch.read
            applied = applied or batch.read > 0
            if batch.locked_out or batch.read < batch_size:
                active.remove(projection)
        if applied:
            announce_projected()
            report_lag()
        if deadline is not None and time.monotonic() > deadline:
            break
    return result


def drain(*, max_seconds: float = 120.0, settle_seconds: float = 10.0) -> None:
    """Catch up until every transaction that committed before the call is applied.

    The readers' horizon is cluster-wide: a transaction of any session still
    open when this starts holds later events back. Rather than leave them to
    the beat safety net, wait (bounded) until every transaction running now has
    ended, catching up meanwhile.
    """
    target = _snapshot("pg_snapshot_xmax")
    started = time.monotonic()
    while True:
        all_visible = _snapshot("pg_snapshot_xmin") >= target
        catch_up(max_seconds=max_seconds)
        elapsed = time.monotonic() - started
        if all_visible or elapsed > min(settle_seconds, max_seconds):
            return
        time.sleep(0.02)


def _snapshot(function: str) -> int:
    """Return the xmin or xmax of the event store's current snapshot."""
    with connections[eventstore.DB_ALIAS].cursor() as cursor:
        cursor.execute(f"SELECT {function}(pg_current_snapshot())::text::bigint")
        return int(cursor.fetchone()[0])


def run_batch(projector: Projector, batch_size: int) -> BatchResult:
    """Apply one batch and move the checkpoint, in one read transaction."""
    with transaction.atomic(using=READ_DB):
        if not projection_lock(projector.name, timeout_seconds=LOCK_WAIT_SECONDS):
            return BatchResult(locked_out=True)
        checkpoint = Checkpoint.objects.select_for_update().get(name=projector.name)
        events = eventstore.read_after(
            eventstore.Checkpoint(checkpoint.tx_id, checkpoint.position),
            limit=batch_size,
        )
        if not events:
            return BatchResult()
        parked = apply_events(projector, events)
        projector.flush()
        checkpoint.tx_id, checkpoint.position = events[-1].tx_id, events[-1].position
        fields = ["tx_id", "position", "updated_at"]
        if parked:
            checkpoint.last_error = parked
            fields.append("last_error")
        checkpoint.save(update_fields=fields)
    metrics.projection_read(projector.name, len(events))
    return BatchResult(read=len(events), parked=bool(parked))


def apply_events(projector: Projector, events: list[RecordedEvent]) -> str:
    """Apply events, parking failures and what waits behind them; return an error."""
    blocked = blocked_streams(projector.name)
    handled = [recorded for recorded in events if projector.handles(recorded)]
    unblocked = not any(recorded.stream_id in blocked for recorded in handled)
    if unblocked and apply_pipelined(projector, handled):
        return ""
    last_error = ""
    for recorded in events:
        if not projector.handles(recorded):
            continue
        if recorded.stream_id in blocked:
            park(projector.name, recorded, status=DeadLetterStatus.WAITING)
            continue
        with apply_span(projector, recorded):
            error = apply_with_retries(projector, recorded)
        if error is not None:
            logger.error(
                "projection %s parked event %s: %s",
                projector.name,
                recorded.position,
                error,
            )
            park(
                projector.name,
                recorded,
                status=DeadLetterStatus.PARKED,
                error=error,
                attempts=len(retry_delays()) + 1,
            )
            blocked.add(recorded.stream_id)
            last_error = (
                f"event {recorded.position} parked: {error.strip().splitlines()[-1]}"
            )
    return last_error[:2000]


def apply_pipelined(projector: Projector, events: list[RecordedEvent]) -> bool:
    """Apply a whole batch at once (the common case); say if every event went.

    On a failure nothing of it stays, and the caller applies the batch event by
    event, with retries and dead letters.
    """
    from contextlib import ExitStack

    if not events:
        return True
    try:
        with pipelined(), ExitStack() as spans:
            for recorded in events:
                spans.enter_context(apply_span(projector, recorded))
            projector.apply_batch(events)
    except Exception:
        logger.info(
            "projection %s: batch failed, applying it event by event",
            projector.name,
            exc_info=True,
        )
        return False
    return True


def apply_span(
    projector: Projector, recorded: RecordedEvent
) -> AbstractContextManager[Any]:
    """Open a child of the span that appended the event: one trace per command."""
    return tracing.span(
        "projection.apply",
        parent=recorded.metadata.get("traceparent"),
        attributes={
            "projection": projector.name,
            "event.type": recorded.type,
            "event.position": recorded.position,
        },
    )
