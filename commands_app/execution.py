"""Run accepted commands: claim with a lease, decide, append and finish atomically.

A worker claims a command by bumping its attempt number; the final transaction
(events and status) commits only while that attempt still holds the claim, so a
worker that wakes up after its lease ran out cannot commit twice (fencing).

The hot path is three statements of its own around the handler's reads: the
claim, which also returns the command and its user's staff flag; the append;
and the final status, an UPDATE conditional on the attempt that is also the
fence (no row: the claim was lost, and the whole transaction rolls back).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from api.prepared import fetch_models, fetch_one, repairable
from observability import context, metrics, tracing

from . import acceptance, eventstore, handlers, snapshots
from .domain.errors import DomainError
from .eventstore import ConcurrencyError, NewEvents
from .models import CommandRecord, CommandStatus, ProductSku
from .push import status as status_push
from .registry import COMMANDS, spec_of

logger = logging.getLogger(__name__)


class LostClaimError(Exception):
    """Raise when another attempt took the command over (this one is fenced)."""


_CLAIM_SQL = """
UPDATE commands AS c SET status = 'running', attempt = c.attempt + 1,
    lease_expires_at = now() + make_interval(secs => %s),
    started_at = coalesce(c.started_at, now()),
    status_seq = c.status_seq + (c.status = 'accepted')::int
FROM {users} AS u, {{alone}}
WHERE c.id = %s AND u.id = c.user_id AND (c.status = 'accepted'
    OR (c.status = 'running' AND c.lease_expires_at < now()))
RETURNING c.*, u.is_staff AS user_is_staff
"""


def claim_record(command_id: UUID) -> CommandRecord | None:
    """Claim a command for this worker; return it as claimed, or None.

    One statement: the returned record carries the new `attempt` and its
    user's staff flag (`user_is_staff`), so nothing else needs loading. Alone,
    it commits without waiting for the disk (`api.prepared.repairable`): a
    claim lost in a crash leaves the command to the sweeper.
    """
    claimed = fetch_models(
        CommandRecord,
        repairable(_claim_sql()),
        [settings.COMMAND_LEASE_SECONDS, command_id],
    )
    return claimed[0] if claimed else None


@functools.cache
def _claim_sql() -> str:
    users = get_user_model()._meta.db_table
    return _CLAIM_SQL.format(users=connection.ops.quote_name(users))


def claim(command_id: UUID) -> int | None:
    """Claim a command for this worker; return the attempt number, or None."""
    record = claim_record(command_id)
    return None if record is None else record.attempt


def execute(command_id: UUID) -> None:
    """Run one command to a final status; safe to call twice or concurrently."""
    record = claim_record(command_id)
    if record is None:
        return
    attempt = record.attempt
    context.bind(command_id=record.id, correlation_id=record.correlation_id)
    attributes = {"command.id": str(record.id), "command.type": record.type}
    started = time.monotonic()
    with tracing.span(
        "command.execute", parent=record.traceparent, attributes=attributes
    ):
        _run(record, attempt)
    # The one line per command (Celery's per-task lines are at DEBUG).
    logger.info(
        "command %s %s",
        record.type,
        record.status,
        extra={
            "command_type": record.type,
            "command_status": record.status,
            "attempt": attempt,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        },
    )


def execute_all(command_ids: list[UUID]) -> None:
    """Run several commands in turn; raise the first error after trying them all.

    A command that raises (its claim released, as `execute` does) does not
    keep the others from running; the task is then retried or its commands
    re-driven by the sweeper, and those already final are skipped by their
    claim.
    """
    first_error: Exception | None = None
    for command_id in command_ids:
        try:
            execute(command_id)
        except Exception as exc:
            logger.exception("command %s failed in a batch", command_id)
            first_error = first_error or exc
        finally:
            context.bind(command_id=None, correlation_id=None)
    if first_error is not None:
        raise first_error


def execute_then_pending(command_ids: list[UUID]) -> int:
    """Run these commands, then those pending for a relay; return how many more.

    With `COMMANDS_TAKEOVER_SECONDS` > 0 (1 s by default, docs/operations.md),
    a command task does not end while commands still wait for a relay to
    publish them: it claims them itself (`acceptance.claim_pending`, a few at
    a time, so that a busy worker's processes share them) and runs them, for
    up to `COMMANDS_TAKEOVER_SECONDS`. Under load,
    the command relay of a worker whose processes all run such a task holds back
    (`relay.CommandsRelayStep`), so that Celery's publish, receive and
    acknowledgement are paid once for many commands; at rest nothing waits
    and every command is its own task, as fast as before. A task that dies
    leaves what it claimed `accepted`, which the sweeper re-drives.
    """
    execute_all(command_ids)
    return run_pending(settings.COMMANDS_TAKEOVER_SECONDS)


def run_pending(seconds: float) -> int:
    """Claim and run pending commands until none is left or `seconds` pass."""
    if seconds <= 0:
        return 0
    deadline = time.monotonic() + seconds
    ran = 0
    while time.monotonic() < deadline:
        claimed = acceptance.claim_pending(
            settings.COMMANDS_TAKEOVER_BATCH, skip=_long_running()
        )
        if not claimed:
            break
        execute_all([UUID(command_id) for command_id, _kind in claimed])
        ran += len(claimed)
    return ran


@functools.cache
def _long_running() -> tuple[str, ...]:
    # Imports run in tasks of their own, with their own time limits.
    return tuple(spec.name for spec in COMMANDS.values() if spec.long_running)


def _run(record: CommandRecord, attempt: int) -> None:
    status_push.push_status(record)
    if attempt - record.redriven_at_attempt > settings.COMMAND_MAX_ATTEMPTS:
        _finish_failed(
            record, attempt, "worker_lost", "Gave up after repeated crashes."
        )
        return
    if spec_of(record).long_running:
        from .imports import run_import

        run_import(record, attempt)
        return
    try:
        _decide_and_commit(record, attempt)
    except LostClaimError:
        logger.warning("command %s attempt %s was fenced off", record.id, attempt)
    except Exception:
        release(record.id, attempt)
        raise


def _decide_and_commit(record: CommandRecord, attempt: int) -> None:
    """Decide and append; after a lost race, decide again in the streams' turn.

    The first decision reads outside any transaction. One that lost a race
    (another writer appended to its streams first) decides again in a
    transaction that first takes those streams' turn (`eventstore.lock_streams`),
    which every append waits for: a worker running commands on a hot stream
    back to back cannot keep overtaking it. Giving up after
    `COMMAND_CONFLICT_RETRIES` (`too_much_contention`) is left for a decision
    whose streams keep changing under it.
    """
    handler_context = handlers.Context(
        command_id=record.id, user_id=record.user_id, is_staff=_user_is_staff(record)
    )
    lost: list[str] = []
    for _ in range(settings.COMMAND_CONFLICT_RETRIES):
        try:
            with _turn(lost):
                lost_now = _decide_and_append(record, attempt, handler_context)
        except ConcurrencyError:  # taking the turn closed a circle of waits
            lost_now = lost
        if lost_now is None:
            return
        lost = lost_now
        logger.info("command %s lost a race; deciding again", record.id)
    finish(
        record,
        attempt,
        status=CommandStatus.FAILED,
        error={
            "code": "too_much_contention",
            "message": "The aggregate kept changing; try again.",
            "details": {"retries": settings.COMMAND_CONFLICT_RETRIES},
        },
    )


@contextlib.contextmanager
def _turn(streams: list[str]) -> Iterator[None]:
    """Nothing for a first decision; a transaction holding the streams' turn after."""
    if not streams:
        yield
        return
    with transaction.atomic():
        eventstore.lock_streams(streams)
        yield


def _decide_and_append(
    record: CommandRecord, attempt: int, handler_context: handlers.Context
) -> list[str] | None:
    """Decide once and commit; return None if done, else the streams raced for."""
    try:
        with tracing.span("command.handle"):
            outcome = spec_of(record).run(record.payload, handler_context)
    except DomainError as error:
        finish(record, attempt, status=CommandStatus.REJECTED, error=error.as_dict())
        return None
    try:
        with transaction.atomic():
            with tracing.span("eventstore.append"):
                positions = eventstore.append(
                    [
                        NewEvents(agg.stream, agg.version, tuple(agg.pending_events))
                        for agg in outcome.changed
                    ],
                    metadata=event_metadata(record),
                )
            reserve_skus(outcome.new_skus)
            if outcome.in_transaction is not None:
                outcome.in_transaction()
            snapshots.save_due(outcome.changed)
            if outcome.awaits_effect:
                await_effect(record, attempt, position=max(positions))
                return None
            finish(
                record,
                attempt,
                status=CommandStatus.SUCCEEDED,
                result=outcome.result,
                position=max(positions, default=None),
            )
        return None
    except ConcurrencyError:
        return [agg.stream for agg in outcome.changed]


def reserve_skus(skus: dict[str, UUID]) -> None:
    """Record new SKUs; a SKU taken meanwhile is a lost race, decided again."""
    if not skus:
        return
    try:
        with transaction.atomic():
            ProductSku.objects.bulk_create(
                [ProductSku(sku=sku, product_id=pid) for sku, pid in skus.items()]
            )
    except IntegrityError as exc:
        raise ConcurrencyError(str(exc)) from exc


def event_metadata(record: CommandRecord) -> dict[str, Any]:
    return {
        "command_id": str(record.id),
        "command_type": record.type,
        "correlation_id": str(record.correlation_id),
        "causation_id": str(record.id),
        "user_id": record.user_id,
        "recorded_by": "commands.execute",
        # The appending span's, so that projectors continue the command's trace.
        "traceparent": tracing.current_traceparent() or record.traceparent,
    }


# A final command keeps no card token (pay-order's, read by its charge).
_FINISH_SQL = """
UPDATE commands SET status = %s, result = %s::jsonb, error = %s::jsonb,
    position = %s, progress = %s, finished_at = %s, lease_expires_at = NULL,
    status_seq = status_seq + 1,
    payload = CASE WHEN payload->'card' ? 'token' THEN payload #- '{card,token}'
        ELSE payload END
WHERE id = %s AND attempt = %s AND status = 'running'
RETURNING status_seq
"""

_AWAIT_SQL = """
UPDATE commands SET lease_expires_at = NULL, position = %s
WHERE id = %s AND attempt = %s AND status = 'running'
RETURNING id
"""


def await_effect(record: CommandRecord, attempt: int, *, position: int) -> None:
    """Leave the command running, without a lease, until an effect finishes it.

    Called in the appending transaction, and fenced like `finish`. With no
    lease, neither the sweeper nor a redelivered task claims it again: the
    effect (delivered at least once from the committed events) finishes it.
    """
    with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
        cursor.execute(_AWAIT_SQL, [position, record.id, attempt])
        if cursor.fetchone() is None:
            raise LostClaimError(str(record.id))
    record.lease_expires_at = None
    record.position = position


def finish(
    record: CommandRecord,
    attempt: int,
    *,
    status: str,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    position: int | None = None,
) -> None:
    """Write the final status if `attempt` still holds the claim; push on commit.

    Called inside the transaction that appended the events, so that events and
    status commit together or not at all. The UPDATE is the fence: it only
    matches while this attempt holds the claim, and it locks the row until the
    commit, so a claim taken over before it matches nothing (LostClaimError
    rolls the events back) and one tried after it waits, then finds the
    command final. No savepoint: a failure here fails the whole transaction.
    Outside a transaction (a rejection: nothing appended) it is one statement
    that commits by itself.
    """
    progress = 100 if status == CommandStatus.SUCCEEDED else record.progress
    finished_at = timezone.now()
    with transaction.mark_for_rollback_on_error():
        row = fetch_one(
            "default",
            _FINISH_SQL,
            [
                status,
                None if result is None else json.dumps(result),
                None if error is None else json.dumps(error),
                position,
                progress,
                finished_at,
                record.id,
                attempt,
            ],
        )
        if row is None:
            raise LostClaimError(str(record.id))
        record.status = status
        record.result = result
        record.error = error
        record.position = position
        record.progress = progress
        record.finished_at = finished_at
        record.lease_expires_at = None
        record.status_seq = row[0]
        transaction.on_commit(lambda: status_push.after_commit(record))
        transaction.on_commit(lambda: record_outcome(record))


def record_outcome(record: CommandRecord) -> None:
    """Count a committed final status and observe its durations."""
    metrics.command_finished(
        record.type,
        record.status,
        created_at=record.created_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
    )


def _user_is_staff(record: CommandRecord) -> bool:
    # `claim_record` reads the flag with the command; a record loaded
    # otherwise (a test, a woken attempt) asks for its user.
    flag = getattr(record, "user_is_staff", None)
    return bool(record.user.is_staff if flag is None else flag)


def hold_claim(command_id: UUID, attempt: int) -> CommandRecord:
    """Lock the command row; raise LostClaimError if another attempt owns it."""
    current = (
        CommandRecord.objects.select_for_update()
        .filter(pk=command_id, attempt=attempt, status=CommandStatus.RUNNING)
        .first()
    )
    if current is None:
        raise LostClaimError(str(command_id))
    return current


def extend_lease(command_id: UUID, attempt: int) -> None:
    CommandRecord.objects.filter(pk=command_id, attempt=attempt).update(
        lease_expires_at=timezone.now()
        + timedelta(seconds=settings.COMMAND_LEASE_SECONDS)
    )


def release(command_id: UUID, attempt: int) -> None:
    """Let the lease lapse now so that a retry (or the sweeper) can claim again."""
    try:
        CommandRecord.objects.filter(
            pk=command_id, attempt=attempt, status=CommandStatus.RUNNING
        ).update(lease_expires_at=timezone.now())
    except Exception:  # the database may be the reason we are here
        logger.warning("could not release command %s", command_id, exc_info=True)


def _finish_failed(
    record: CommandRecord, attempt: int, code: str, message: str
) -> None:
    attempts = attempt - 1 - record.redriven_at_attempt
    error = {"code": code, "message": message, "details": {"attempts": attempts}}
    finish(record, attempt, status=CommandStatus.FAILED, error=error)


def mark_projected(positions: Iterable[int]) -> list[CommandRecord]:
    """Bump the status sequence of succeeded commands whose last event is given.

    One statement for a projection round's positions; return the records as
    updated, for their `projected` pushes (push.status.push_projected).
    """
    return fetch_models(
        CommandRecord,
        repairable(
            "UPDATE commands SET status_seq = status_seq + 1 FROM {alone} "
            "WHERE position = ANY(%s) AND status = %s RETURNING commands.*"
        ),
        [list(positions), str(CommandStatus.SUCCEEDED)],
    )
