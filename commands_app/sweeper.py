"""Re-drive stuck commands: `accepted` for too long, or `running` past their lease.

A publish can be lost between the commit and the broker (the command relay,
commands_app/acceptance.py `publish_pending`, dies after its claim; a request
publishing on commit with the relay off). This sweeper, run by beat, re-drives
what stayed `accepted` for COMMAND_REDRIVE_AFTER_SECONDS after its last
publish, and what runs past its lease. Re-driving twice is harmless: a worker
claims a command at most once per lease.

A published command is not re-driven while tasks wait in its queue: it is
most likely one of them, behind a backlog the workers have not reached yet.
Re-driving there put a second task per command behind the same backlog,
which the workers then received, claimed and dropped, so that a backlog
older than COMMAND_REDRIVE_AFTER_SECONDS grew by itself (bench figure 2: up
to 500 commands re-driven every sweep; docs/performance.md). A publish that
was really lost is re-driven by the first sweep that finds its queue empty.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone

from observability import metrics

from .acceptance import enqueue, task_of
from .models import CommandRecord, CommandStatus
from .registry import COMMANDS, CommandSpec

logger = logging.getLogger(__name__)

BATCH = 500


def queue_of(spec: CommandSpec) -> str:
    """Return the Celery queue that a command of `spec` is published to."""
    return str(settings.CELERY_TASK_ROUTES[task_of(spec).name]["queue"])


def backlogged_types() -> list[str]:
    """Return the command types whose queue has tasks waiting, as the broker says.

    One broker connection. A broker that does not answer holds nothing back:
    the sweep then re-drives as it would without a backlog (and its publishes
    fail and are retried by the next sweep if the broker is down).
    """
    queues = sorted({queue_of(spec) for spec in COMMANDS.values()})
    try:
        depths = metrics.queue_depths(settings.CELERY_BROKER_URL, queues)
    except Exception as exc:
        logger.warning("the sweeper could not read the queues' depth: %r", exc)
        return []
    busy = {queue for queue, depth in zip(queues, depths, strict=True) if depth}
    return sorted(name for name, spec in COMMANDS.items() if queue_of(spec) in busy)


def stuck_commands() -> list[CommandRecord]:
    """Return the commands to re-drive, oldest publish first (up to BATCH).

    The broker is asked for its queues' depth only when an overdue accepted
    command is among them: a sweep at rest opens no broker connection.
    """
    now = timezone.now()
    accepted_before = now - timedelta(seconds=settings.COMMAND_REDRIVE_AFTER_SECONDS)
    # A command still pending for a relay was never published: the relays
    # publish it (their poll is the net), or with the takeover on the running
    # tasks take it; re-driving it here would publish a task per command of a
    # held backlog. One published to a queue where tasks wait is left to that
    # backlog (the module's doc).
    overdue = Q(
        status=CommandStatus.ACCEPTED,
        publish_pending=False,
        enqueued_at__lt=accepted_before,
    )
    lost = Q(status=CommandStatus.RUNNING, lease_expires_at__lt=now)

    def select(accepted: Q) -> list[CommandRecord]:
        return list(
            CommandRecord.objects.filter(accepted | lost)
            .order_by("enqueued_at")
            .only("id", "type", "status")[:BATCH]
        )

    stuck = select(overdue)
    if any(record.status == CommandStatus.ACCEPTED for record in stuck):
        held = backlogged_types()
        if held:
            stuck = select(overdue & ~Q(type__in=held))
    return stuck


def sweep() -> int:
    """Enqueue every stuck command again; return how many."""
    stuck = stuck_commands()
    # Published here: the command relay (if it was down) need not again.
    CommandRecord.objects.filter(pk__in=[r.pk for r in stuck]).update(
        enqueued_at=timezone.now(), publish_pending=False
    )
    for record in stuck:
        enqueue(record)
    metrics.sweeper_redrove(len(stuck))
    if stuck:
        logger.info("re-drove %d stuck commands", len(stuck))
    return len(stuck)


def redrive_failed(command_ids: Iterable[UUID]) -> int:
    """Send failed commands back to the workers (staff's re-drive); return how many.

    The attempt number only goes up, as it fences the workers of earlier
    attempts; `COMMAND_MAX_ATTEMPTS` counts the claims after the re-drive.
    """
    with transaction.atomic():
        failed = list(
            CommandRecord.objects.select_for_update()
            .filter(pk__in=list(command_ids), status=CommandStatus.FAILED)
            .only("id", "type")
        )
        CommandRecord.objects.filter(pk__in=[r.pk for r in failed]).update(
            status=CommandStatus.ACCEPTED,
            redriven_at_attempt=F("attempt"),
            error=None,
            finished_at=None,
            lease_expires_at=None,
            enqueued_at=Now(),
            status_seq=F("status_seq") + 1,
        )
        transaction.on_commit(lambda: _enqueue_all(failed))
    if failed:
        logger.info("staff re-drove %d failed commands", len(failed))
    return len(failed)


def _enqueue_all(records: list[CommandRecord]) -> None:
    for record in records:
        enqueue(record)
