"""Re-drive stuck commands: `accepted` for too long, or `running` past their lease.

A publish can be lost between the commit and the broker (the command relay,
commands_app/acceptance.py `publish_pending`, dies after its claim; a request
publishing on commit with the relay off). This sweeper, run by beat, re-drives
what stayed `accepted` for COMMAND_REDRIVE_AFTER_SECONDS after its last
publish, and what runs past its lease. Re-driving twice is harmless: a worker
claims a command at most once per lease.
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

from .acceptance import enqueue
from .models import CommandRecord, CommandStatus

logger = logging.getLogger(__name__)

BATCH = 500


def stuck_commands() -> list[CommandRecord]:
    now = timezone.now()
    accepted_before = now - timedelta(seconds=settings.COMMAND_REDRIVE_AFTER_SECONDS)
    return list(
        CommandRecord.objects.filter(
            # A command still pending for a relay was never published: the
            # relays publish it (their poll is the net), or with the takeover
            # on the running tasks take it; re-driving it here would publish
            # a task per command of a held backlog.
            Q(
                status=CommandStatus.ACCEPTED,
                publish_pending=False,
                enqueued_at__lt=accepted_before,
            )
            | Q(status=CommandStatus.RUNNING, lease_expires_at__lt=now)
        )
        .order_by("enqueued_at")
        .only("id", "type")[:BATCH]
    )


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
