"""Accepting commands: ownership on the write model, idempotency, the publish relay."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.conf import settings
from django.db import connections as db_connections
from django.db import transaction
from django.db.models import NOT_PROVIDED, Field

from api.prepared import fetch_all, fetch_one, placeholders, repairable
from api.waiting import release_pooled_connections
from observability import context, metrics, tracing

from . import eventstore
from .domain.events import OrderPlaced
from .domain.order import order_stream
from .models import CommandRecord, CommandStatus
from .registry import COMMANDS, PLACE_ORDER, CommandSpec, spec_of

if TYPE_CHECKING:
    from celery import Task

logger = logging.getLogger(__name__)


class IdempotencyMismatchError(Exception):
    """Raise when an Idempotency-Key is reused with another body."""


def request_hash(name: str, body: Any) -> str:
    """Return a keyed hash that identifies a command body for idempotency.

    A card enters the hash by its last four digits only: its number, CVC and
    expiry must not be recoverable from the stored hash by trying candidates
    with the secret key. A `pay-order` is thus identified by its order and the
    card's last four digits.
    """
    canonical = json.dumps(
        [name, without_card_secrets(body)], sort_keys=True, separators=(",", ":")
    )
    return hmac.new(
        settings.SECRET_KEY.encode(), canonical.encode(), hashlib.sha256
    ).hexdigest()


def without_card_secrets(body: Any) -> Any:
    """Return a body whose `card` is reduced to its number's last four digits."""
    if not isinstance(body, dict) or not isinstance(body.get("card"), dict):
        return body
    number = str(body["card"].get("number", ""))
    return {**body, "card": {"last4": number[-4:]}}


def order_owner(order_id: UUID) -> int | None:
    """Return the customer of an order from the write model, or None if unknown.

    An order still being placed (its place-order command not yet run) belongs
    to the user who sent that command.
    """
    event = eventstore.first_event(order_stream(order_id))
    if isinstance(event, OrderPlaced):
        return event.customer_id
    return (
        CommandRecord.objects.filter(
            type=PLACE_ORDER.name,
            aggregate_id=order_id,
            status__in=[CommandStatus.ACCEPTED, CommandStatus.RUNNING],
        )
        .values_list("user_id", flat=True)
        .first()
    )


def submit(
    spec: CommandSpec,
    *,
    user_id: int,
    payload: dict[str, Any],
    aggregate_id: UUID | None,
    idempotency_key: str | None,
    body_hash: str,
) -> tuple[CommandRecord, bool]:
    """Store a command once per (user, key); it is published after the commit.

    The row is the outbox: with COMMANDS_RELAY_ENABLED (the default) it is
    stored as `publish_pending` with a NOTIFY on `CHANNEL`, and the relay in
    the command workers publishes it (`publish_pending`); the request makes no
    broker call. Otherwise the request publishes it on commit (`enqueue`).
    Either way a lost publish is re-driven by the sweeper.

    Return the record and whether it was created now. Concurrent duplicates
    meet at the unique index: one inserts, the others read its row.
    """
    by_relay = settings.COMMANDS_RELAY_ENABLED
    with tracing.span("command.accept", attributes={"command.type": spec.name}):
        correlation_id, traceparent = trace_ids()
        record = CommandRecord(
            type=spec.name,
            user_id=user_id,
            payload=payload,
            aggregate_id=aggregate_id,
            idempotency_key=idempotency_key,
            request_hash=body_hash,
            correlation_id=correlation_id,
            traceparent=traceparent,
            publish_pending=by_relay,
        )
        if not insert(record, notify=by_relay):
            earlier = CommandRecord.objects.get(
                user_id=user_id, idempotency_key=idempotency_key
            )
            if earlier.request_hash != body_hash or earlier.type != spec.name:
                raise IdempotencyMismatchError(str(earlier.id)) from None
            return earlier, False
        if not by_relay:
            transaction.on_commit(lambda: enqueue(record), robust=True)
        transaction.on_commit(lambda: metrics.command_accepted(spec.name))
    context.bind(command_id=record.id, correlation_id=record.correlation_id)
    return record, True


def insert(record: CommandRecord, *, notify: bool) -> bool:
    """INSERT a new command row unless its (user, key) is taken; say whether it was.

    One statement, so one round trip and, outside a transaction, its own
    commit: the idempotency check is the unique index (`ON CONFLICT DO
    NOTHING`, which waits for a concurrent duplicate's transaction and then
    skips), and the relay's NOTIFY is evaluated in its RETURNING, for an
    inserted row only. PostgreSQL holds the NOTIFY until the commit. Prepared
    once per connection (`api.prepared`), like the event store's INSERT.
    """
    given, returned, sql = _insert_sql(notify)
    db = db_connections["default"]
    params = [f.get_db_prep_save(getattr(record, f.attname), db) for f in given]
    row = fetch_one("default", sql, params)
    if row is None:
        return False
    for field, value in zip(returned, row, strict=False):
        setattr(record, field.attname, value)
    record._state.adding = False
    record._state.db = "default"
    return True


@functools.cache
def _insert_sql(
    notify: bool,
) -> tuple[list[Field[Any, Any]], list[Field[Any, Any]], str]:
    """Return the fields a new row is given, those it returns, and the INSERT.

    The columns that only the database fills (`db_default` alone: the
    timestamps) come back from RETURNING.
    """
    fields = CommandRecord._meta.concrete_fields
    given = [f for f in fields if f.db_default is NOT_PROVIDED or f.has_default()]
    returned = [f for f in fields if f not in given]
    wake = f", pg_notify('{CHANNEL}', '')" if notify else ""
    sql = (
        f"INSERT INTO {CommandRecord._meta.db_table} "  # noqa: S608
        f"({', '.join(f.column for f in given)}) "
        f"VALUES ({placeholders(len(given))}) "
        "ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL "
        f"DO NOTHING RETURNING {', '.join(f.column for f in returned)}{wake}"
    )
    return given, returned, sql


def trace_ids() -> tuple[UUID, str]:
    """Return the correlation id and traceparent for a new command.

    The correlation id is the trace id, so that logs, events and traces meet on
    one id; without a tracer, a fresh id makes an unsampled traceparent.
    """
    traceparent = tracing.current_traceparent()
    correlation_id = tracing.trace_id_of(traceparent)
    if traceparent is None or correlation_id is None:
        correlation_id = uuid.uuid4()
        traceparent = tracing.traceparent_for(correlation_id)
    return correlation_id, traceparent


def task_of(spec: CommandSpec) -> Task:
    """Return the task that runs one command of `spec` (imports have their own)."""
    from .tasks import execute_import_task, execute_task

    return execute_import_task if spec.long_running else execute_task


def enqueue(record: CommandRecord) -> None:
    """Publish the task for a command; a lost publish is re-driven by the sweeper."""
    try:
        task_of(spec_of(record)).delay(str(record.id))
    except Exception:
        logger.warning("enqueue of command %s failed; sweeper will re-drive", record.id)


# --- The command relay: the commands table is the outbox -------------------------

# Notified in the accepting transaction; the command workers' relays LISTEN.
CHANNEL = "commands"
# Commands published per claim (one short transaction, then one producer).
PUBLISH_BATCH = 200

# Held (`pg_advisory_lock`, by an operator or a test) it pauses every command
# relay: their claims take it shared, in the claiming statement itself.
PUBLISH_LOCK = 0x434D4450  # "CMDP"

_CLAIM_PENDING_SQL = """
UPDATE commands SET publish_pending = false, enqueued_at = now()
FROM {alone}
WHERE id IN (
    SELECT id FROM commands
    WHERE publish_pending AND NOT (type = ANY(%s))
    AND pg_try_advisory_xact_lock_shared(%s)
    ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED
)
RETURNING id, type
"""


def claim_pending(batch: int, *, skip: Sequence[str] = ()) -> list[tuple[str, str]]:
    """Take up to `batch` pending commands from the relays; return (id, type) pairs.

    One statement, its own transaction (`FOR UPDATE SKIP LOCKED`), committed
    without waiting for the disk (a claim lost in a crash is published and
    fenced again: `api.prepared.repairable`): the flag is cleared and
    `enqueued_at` stamped, so whoever claimed a command must see it run or
    leave it to the sweeper, which re-drives it `COMMAND_REDRIVE_AFTER_SECONDS`
    after `enqueued_at`. Commands of the types in `skip` are left pending.
    Nothing is claimed while `PUBLISH_LOCK` is held.
    """
    rows = fetch_all(
        "default", repairable(_CLAIM_PENDING_SQL), [list(skip), PUBLISH_LOCK, batch]
    )
    return [(str(command_id), kind) for command_id, kind in rows]


def publish_pending(batch: int = PUBLISH_BATCH) -> int:
    """Publish up to `batch` pending commands; return how many (the relay's drain).

    The claim (clear the flag, stamp `enqueued_at`) commits before the publish,
    so that no row stays locked while the broker answers and several relays
    share the work (SKIP LOCKED). A publish that fails puts the flag back on
    the commands not yet published and raises (the relay pauses and tries
    again); a relay that dies in between leaves them to the sweeper, which
    re-drives accepted commands COMMAND_REDRIVE_AFTER_SECONDS after
    `enqueued_at`. Publishing twice is harmless: a claim fences the second.
    """
    from .tasks import execute_many_task

    claimed = claim_pending(batch)
    if not claimed:
        return 0
    published = 0
    try:
        with execute_many_task.app.producer_or_acquire() as producer:
            for chunk in task_chunks(claimed):
                if len(chunk) > 1:
                    execute_many_task.apply_async(
                        ([command_id for command_id, _kind in chunk],),
                        producer=producer,
                    )
                else:
                    [(command_id, kind)] = chunk
                    task_of(COMMANDS[kind]).apply_async(
                        (command_id,), producer=producer
                    )
                published += len(chunk)
    except Exception:
        CommandRecord.objects.filter(
            pk__in=[command_id for command_id, _kind in claimed[published:]]
        ).update(publish_pending=True)
        raise
    return published


def task_chunks(claimed: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Group claimed commands into tasks: one per import, chunks of the others.

    A chunk is at most COMMANDS_PER_TASK commands, and a claim is spread over
    at least COMMANDS_TASKS_PER_CLAIM tasks (when it has that many), so that
    every worker process gets a share of a burst; a lone command is a task of
    its own, as fast as before.
    """
    imports = [[item] for item in claimed if COMMANDS[item[1]].long_running]
    others = [item for item in claimed if not COMMANDS[item[1]].long_running]
    per_task = settings.COMMANDS_PER_TASK
    spread = -(-len(others) // settings.COMMANDS_TASKS_PER_CLAIM)
    size = max(1, min(per_task, spread))
    return imports + [others[i : i + size] for i in range(0, len(others), size)]


def wait_for_final(command_id: UUID, seconds: float) -> CommandRecord:
    """Poll a command until it reaches a final status or `seconds` pass."""
    deadline = time.monotonic() + seconds
    delay = 0.005
    while True:
        record = CommandRecord.objects.get(pk=command_id)
        if record.is_final or time.monotonic() >= deadline:
            return record
        release_pooled_connections()
        time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
        delay = min(delay * 2, 0.025)


def new_id() -> str:
    return str(uuid.uuid4())
