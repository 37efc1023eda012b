"""Delete command records once they have served their purpose.

A finished command's record (its payload, result and status) is kept
`COMMAND_RETENTION_DAYS` after it finished, and never less than
`IDEMPOTENCY_KEY_TTL_HOURS`: the record is what answers a retried
`Idempotency-Key`, so a key is honoured for at least that long after its
command finished (and for as long as the command runs). After that the status
endpoint answers 404 and the same key makes a new command.

Deletes go in small batches, each its own short transaction: the projection
readers' horizon is cluster-wide, so one long DELETE would hold every
projection back.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .models import FINAL_STATUSES

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000

_DELETE_SQL = """
DELETE FROM commands WHERE id IN (
    SELECT id FROM commands
    WHERE finished_at < %s AND status = ANY(%s)
    ORDER BY finished_at
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
"""


def retention() -> timedelta:
    """Return how long a finished command's record is kept."""
    return max(
        timedelta(days=settings.COMMAND_RETENTION_DAYS),
        timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS),
    )


def purge_finished_commands(
    *, now: datetime | None = None, batch_size: int = BATCH_SIZE
) -> int:
    """Delete the records of commands finished before their retention; say how many."""
    assert not connection.in_atomic_block, "each batch commits on its own"
    cutoff = (now or timezone.now()) - retention()
    total = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_DELETE_SQL, [cutoff, sorted(FINAL_STATUSES), batch_size])
            deleted = cursor.rowcount
        total += deleted
        if deleted < batch_size:
            break
    if total:
        logger.info("deleted %d finished command records", total)
    return total
