"""The runner: apply events to every projection from its checkpoint, in rounds.

A round is one short transaction of the read database for all projections:
their advisory locks (tried in one statement, so that one runner at a time
applies a projection whatever the number of workers; one held elsewhere sits
the round out), their checkpoints, one read of the events from the lowest of
them, every projection's share in one savepoint and pipeline (on a failure,
each share again in a savepoint of its own, so that one projection's failure
leaves the others' work in place), the moved checkpoints, and the mark of the
commands that every projection has now applied. Those commands are announced
after the commit.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction

from commands_app import eventstore
from commands_app.eventstore import Position, RecordedEvent
from observability import metrics, tracing
from relays import Relay

from .announce import announce_in_round, announce_projected, notify_projected
from .base import READ_DB, Projector, RetryBudget, apply_counting_tries, pipelined
from .dead_letters import LetterBox, Letters, letters_for, letters_of
from .lag import report_lag
from .locks import lock_key, projection_lock
from .models import Checkpoint, DeadLetterStatus
from .registry import projector_class, projector_names
from .stock import changed_products, notify_stock

logger = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 5.0


@dataclass
class BatchResult:
    read: int = 0
    parked: bool = False
    locked_out: bool = False
    products: set[str] = field(default_factory=set)


@dataclass
class CatchUpResult:
    applied: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class RoundResult:
    """What one round did: events read, and per projection applied or why not."""

    read: int = 0
    applied: dict[str, int] = field(default_factory=dict)
    locked_out: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    announced: list[int] = field(default_factory=list)
    products: set[str] = field(default_factory=set)


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
    """Apply new events to one projection (or all), until a read comes back short.

    Each round reads the events once for every projection still active. A
    projection that another runner holds sits the rest out here, then gets
    the bounded wait for its lock of `run_batch` (that runner may have read
    before the events this run was woken for).
    """
    names = [name] if name else list(projector_names())
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    result = CatchUpResult(applied=dict.fromkeys(names, 0))
    projectors = {projection: projector_class(projection)() for projection in names}
    active = list(names)
    locked_out: list[str] = []
    while active:
        try:
            round_ = run_round([projectors[p] for p in active], batch_size)
        except Exception as exc:
            logger.exception("projection round failed")
            for projection in active:
                _record_error(result, projection, exc)
            break
        for projection, count in round_.applied.items():
            result.applied[projection] += count
        for projection, error in round_.errors.items():
            result.errors[projection] = error
        gone = set(round_.errors) | set(round_.locked_out)
        locked_out += round_.locked_out
        active = [projection for projection in active if projection not in gone]
        if round_.read < batch_size:
            break
        if deadline is not None and time.monotonic() > deadline:
            break
    for projection in locked_out:
        _catch_up_alone(projectors[projection], batch_size, result, deadline)
    return result


def _catch_up_alone(
    projector: Projector,
    batch_size: int,
    result: CatchUpResult,
    deadline: float | None,
) -> None:
    """Catch one projection up batch by batch, waiting (bounded) for its lock."""
    while True:
        try:
            batch = run_batch(projector, batch_size)
        except Exception as exc:
            logger.exception("projection %s failed", projector.name)
            _record_error(result, projector.name, exc)
            return
        result.applied[projector.name] += batch.read
        notify_stock(batch.products)
        if batch.read:
            announce_projected()
            report_lag()
        if batch.locked_out or batch.read < batch_size:
            return
        if deadline is not None and time.monotonic() > deadline:
            return


def _record_error(result: CatchUpResult, projection: str, exc: Exception) -> None:
    result.errors[projection] = repr(exc)
    Checkpoint.objects.filter(name=projection).update(
        last_error=f"runner: {exc!r}"[:2000]
    )


def run_round(projectors: list[Projector], batch_size: int) -> RoundResult:
    """Apply one batch to every projection and announce, in one read transaction."""
    result = RoundResult()
    with transaction.atomic(using=READ_DB):
        held = try_locks([projector.name for projector in projectors])
        result.locked_out = [p.name for p in projectors if p.name not in held]
        checkpoints = read_checkpoints()
        mine = {p.name: checkpoints[p.name] for p in projectors if p.name in held}
        if not mine:
            return result
        start = min(mine.values())
        events = eventstore.read_after(start, limit=batch_size)
        result.read = len(events)
        if not events:
            return result
        moved = apply_round(
            [p for p in projectors if p.name in mine], mine, events, result
        )
        save_checkpoints(moved)
        for name, (checkpoint, _error) in moved.items():
            checkpoints[name] = checkpoint
        every_lock = len(mine) == len(checkpoints)
        result.announced = announce_in_round(
            checkpoints if every_lock else None, start, events
        )
    for name, count in result.applied.items():
        metrics.projection_read(name, count)
    notify_projected(result.announced)
    notify_stock(result.products)
    if result.applied:
        report_lag()
    return result


def apply_round(
    projectors: list[Projector],
    checkpoints: dict[str, Position],
    events: list[RecordedEvent],
    result: RoundResult,
) -> dict[str, tuple[Position, str]]:
    """Apply each projection's share of the events read; return the moved checkpoints.

    `checkpoints` are the projections' whose lock the round holds. Record in
    `result` what each applied, its error, and the products changed.
    """
    moved: dict[str, tuple[Position, str]] = {}
    budget = RetryBudget()
    shares = {
        name: [event for event in events if event.reader_position > after]
        for name, after in checkpoints.items()
    }
    letters = letters_of(list(checkpoints), events)
    together, failed = apply_together(
        [(p, shares[p.name]) for p in projectors if shares[p.name]], letters
    )
    for projector in projectors:
        share = shares[projector.name]
        if not share:
            continue
        try:
            parked = (
                ""
                if projector.name in together
                else apply_share(
                    projector,
                    share,
                    budget,
                    letters[projector.name],
                    batch_failed=projector.name == failed,
                )
            )
        except Exception as exc:
            logger.exception("projection %s failed", projector.name)
            result.errors[projector.name] = repr(exc)
            error = f"runner: {exc!r}"[:2000]
            moved[projector.name] = (checkpoints[projector.name], error)
            continue
        moved[projector.name] = (share[-1].reader_position, parked)
        result.applied[projector.name] = len(share)
        result.products |= changed_products(projector, share)
    return moved


def try_locks(names: list[str]) -> set[str]:
    """Try every projection's lock for the current transaction in one statement."""
    assert connections[READ_DB].in_atomic_block, "the locks last as long as it"
    keys = {lock_key(name): name for name in names}
    with connections[READ_DB].cursor() as cursor:
        cursor.execute(
            "SELECT key FROM unnest(%s::bigint[]) AS key "
            "WHERE pg_try_advisory_xact_lock(key)",
            [list(keys)],
        )
        return {keys[row[0]] for row in cursor.fetchall()}


def read_checkpoints() -> dict[str, Position]:
    """Return every projection's checkpoint, creating the missing ones."""
    names = projector_names()
    rows = Checkpoint.objects.filter(name__in=names).values_list(
        "name", "tx_id", "position"
    )
    checkpoints = {name: Position(tx_id, position) for name, tx_id, position in rows}
    if len(checkpoints) < len(names):
        ensure_checkpoints([name for name in names if name not in checkpoints])
        return read_checkpoints()
    return checkpoints


def apply_together(
    shares: list[tuple[Projector, list[RecordedEvent]]],
    letters: dict[str, Letters],
) -> tuple[set[str], str | None]:
    """Apply the round's clear shares at once; return those applied, and who failed.

    The common case: every projection's share, none with a dead letter in
    its way, goes in one savepoint and one pipeline (a round trip for all of
    them, not two savepoints and a sync each). On a failure nothing of it
    stays, and each projection goes its own way (`apply_share`): a savepoint
    of its own, then event by event with retries and dead letters, so that
    one projection's failure leaves the others' work in place. The one whose
    handlers raised (known unless PostgreSQL failed a statement at the
    pipeline's end) goes event by event at once: its batch was tried.
    """
    clear: list[tuple[Projector, list[RecordedEvent]]] = []
    for projector, share in shares:
        handled = [recorded for recorded in share if projector.handles(recorded)]
        if handled and letters[projector.name].clear(handled):
            clear.append((projector, handled))
    if not clear:
        return set(), None
    failed: str | None = None
    try:
        with pipelined():
            for projector, handled in clear:
                failed = projector.name
                with apply_spans(projector, handled):
                    projector.apply_batch(handled)
            failed = None
    except Exception:
        logger.info(
            "projections %s: the round's batch failed (%s), applying each on its own",
            ", ".join(projector.name for projector, _ in clear),
            failed or "at the end",
            exc_info=True,
        )
        return set(), failed
    return {projector.name for projector, _ in clear}, None


def apply_share(
    projector: Projector,
    events: list[RecordedEvent],
    budget: RetryBudget,
    letters: Letters | None = None,
    *,
    batch_failed: bool = False,
) -> str:
    """Apply a projection's share of the round in a savepoint; return its error."""
    if not any(projector.handles(event) for event in events):
        return ""
    with transaction.atomic(using=READ_DB):
        parked = apply_events(
            projector, events, budget, letters, batch_failed=batch_failed
        )
    return parked


def save_checkpoints(moved: dict[str, tuple[Position, str]]) -> None:
    """Move the checkpoints (and record parked events' errors) in one statement."""
    if not moved:
        return
    names = list(moved)
    with connections[READ_DB].cursor() as cursor:
        cursor.execute(
            "UPDATE read_checkpoints AS c "
            "SET tx_id = v.tx_id, position = v.position, updated_at = now(), "
            "last_error = CASE WHEN v.error = '' THEN c.last_error ELSE v.error END "
            "FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::text[]) "
            "AS v (name, tx_id, position, error) WHERE c.name = v.name",
            [
                names,
                [moved[name][0].tx_id for name in names],
                [moved[name][0].position for name in names],
                [moved[name][1] for name in names],
            ],
        )


def drain(*, max_seconds: float = 120.0, settle_seconds: float = 10.0) -> int:
    """Catch up until every transaction that committed before the call is applied.

    The readers' horizon is cluster-wide: a transaction of any session still
    open when this starts holds later events back. Rather than leave them to
    the next poll, wait (bounded) until every transaction running now has
    ended, catching up meanwhile. Return the most events any projection applied.
    """
    target, all_visible = _horizon(None)
    started = time.monotonic()
    applied = 0
    while True:
        result = catch_up(max_seconds=max_seconds)
        applied += max(result.applied.values(), default=0)
        elapsed = time.monotonic() - started
        if all_visible or elapsed > min(settle_seconds, max_seconds):
            return applied
        time.sleep(0.02)
        _target, all_visible = _horizon(target)


def relay_drain() -> int:
    """The projector relay's drain: catch up, then wait for the next commit.

    Return 0 even when it applied events: the catch-up ran until a read came
    back short, so whatever committed after that read sent a notification the
    relay finds waiting, and an extra empty round per wake-up is saved. The
    bound on one drain is the relay's poll: the next catch-up follows at once
    when notified after this one, `PROJECTIONS_COALESCE_SECONDS` later when
    notified during it, or within `PROJECTIONS_POLL_SECONDS`.

    Whoever holds `PAUSE_LOCK` (`pg_advisory_lock` on the read database: an
    operator, or a test driving the runner itself) pauses every projector
    relay meanwhile; the runner's own functions do not take it.
    """
    with connections[READ_DB].cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock_shared(%s)", [PAUSE_LOCK])
        row = cursor.fetchone()
    if not (row and row[0]):
        return 0
    try:
        drain(max_seconds=RELAY_DRAIN_SECONDS)
    finally:
        with connections[READ_DB].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock_shared(%s)", [PAUSE_LOCK])
    return 0


PAUSE_LOCK = 0x50524A52  # "PRJR"


# One relay drain's bound before it lets the relay loop (and stop, on shutdown).
RELAY_DRAIN_SECONDS = 30.0


def projector_relay() -> Relay:
    """Return the relay that wakes the projections at every appending commit."""
    from django.conf import settings

    return Relay(
        eventstore.PROJECTIONS_CHANNEL,
        relay_drain,
        poll_seconds=settings.PROJECTIONS_POLL_SECONDS,
        coalesce_seconds=settings.PROJECTIONS_COALESCE_SECONDS,
    )


def _horizon(target: int | None) -> tuple[int, bool]:
    """Return the snapshot's xmax, and if every transaction before `target` ended.

    With no target, the snapshot's own xmax is the target: one round trip says
    whether a transaction is running at all.
    """
    with connections[eventstore.DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT pg_snapshot_xmin(s)::text::bigint, "
            "pg_snapshot_xmax(s)::text::bigint FROM pg_current_snapshot() AS s"
        )
        xmin, xmax = (int(value) for value in cursor.fetchone())
    target = xmax if target is None else target
    return target, xmin >= target


def run_batch(projector: Projector, batch_size: int) -> BatchResult:
    """Apply one batch to one projection and move its checkpoint, in one transaction.

    Waits (bounded) for the projection's lock: the path of a projection that
    another runner held during a round.
    """
    with transaction.atomic(using=READ_DB):
        if not projection_lock(projector.name, timeout_seconds=LOCK_WAIT_SECONDS):
            return BatchResult(locked_out=True)
        checkpoint = Checkpoint.objects.select_for_update().get(name=projector.name)
        events = eventstore.read_after(
            checkpoint.to_position(),
            limit=batch_size,
        )
        if not events:
            return BatchResult()
        parked = apply_events(projector, events, RetryBudget())
        checkpoint.move_to(events[-1].reader_position)
        fields = ["tx_id", "position", "updated_at"]
        if parked:
            checkpoint.last_error = parked
            fields.append("last_error")
        checkpoint.save(update_fields=fields)
    metrics.projection_read(projector.name, len(events))
    return BatchResult(
        read=len(events),
        parked=bool(parked),
        products=changed_products(projector, events),
    )


def apply_events(
    projector: Projector,
    events: list[RecordedEvent],
    budget: RetryBudget,
    letters: Letters | None = None,
    *,
    batch_failed: bool = False,
) -> str:
    """Apply events, parking failures and what waits behind them; return an error.

    Retries pause only while the round's `budget` lasts; letters are committed
    at once, on a connection of their own (dead_letters.LetterBox). `letters`
    are the projection's as the round read them (else they are read here);
    with `batch_failed` the set-based try of these events was made already.
    """
    handled = [recorded for recorded in events if projector.handles(recorded)]
    if letters is None:
        letters = letters_for(projector.name, handled)
    if (
        not batch_failed
        and letters.clear(handled)
        and apply_pipelined(projector, handled)
    ):
        return ""
    last_error = ""
    with LetterBox() as box:
        for recorded in handled:
            if recorded.position in letters.positions:
                continue
            if letters.blocks(recorded):
                box.park(projector.name, recorded, status=DeadLetterStatus.WAITING)
                continue
            with apply_span(projector, recorded):
                error, tries = apply_counting_tries(projector, recorded, budget)
            if error is None:
                continue
            logger.error(
                "projection %s parked event %s: %s",
                projector.name,
                recorded.position,
                error,
            )
            box.park(
                projector.name,
                recorded,
                status=DeadLetterStatus.PARKED,
                error=error,
                attempts=tries,
            )
            letters.block(recorded)
            last_error = (
                f"event {recorded.position} parked: {error.strip().splitlines()[-1]}"
            )
    return last_error[:2000]


def apply_pipelined(projector: Projector, events: list[RecordedEvent]) -> bool:
    """Apply a whole batch at once (the common case); say if every event went.

    On a failure nothing of it stays, and the caller applies the batch event by
    event, with retries and dead letters.
    """
    if not events:
        return True
    try:
        with pipelined(), apply_spans(projector, events):
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
        attributes=span_attributes(projector, recorded),
    )


def apply_spans(
    projector: Projector, events: list[RecordedEvent]
) -> AbstractContextManager[Any]:
    """Open `apply_span`'s span for every event of a batch, over the whole batch."""
    return tracing.sibling_spans(
        "projection.apply",
        [
            (recorded.metadata.get("traceparent"), span_attributes(projector, recorded))
            for recorded in events
        ],
    )


def span_attributes(projector: Projector, recorded: RecordedEvent) -> dict[str, Any]:
    return {
        "projection": projector.name,
        "event.type": recorded.type,
        "event.position": recorded.position,
    }
