"""Command throughput and outcomes per minute, for the staff dashboard."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.utils import timezone

from .models import CommandRecord, CommandStatus
from .push import broadcast

WINDOW_MINUTES = 15
OUTCOMES = (CommandStatus.SUCCEEDED, CommandStatus.REJECTED, CommandStatus.FAILED)


def command_stats(*, now: datetime | None = None) -> dict[str, Any]:
    """Return, per minute of the last WINDOW_MINUTES, commands sent and outcomes."""
    end = (now or timezone.now()).replace(second=0, microsecond=0)
    start = end - timedelta(minutes=WINDOW_MINUTES - 1)
    rows: dict[datetime, dict[str, Any]] = {
        start + timedelta(minutes=i): dict.fromkeys(("sent", *OUTCOMES), 0)
        for i in range(WINDOW_MINUTES)
    }
    sent = (
        CommandRecord.objects.filter(created_at__gte=start)
        .annotate(minute=TruncMinute("created_at"))
        .values("minute")
        .annotate(n=Count("id"))
    )
    for row in sent:
        if row["minute"] in rows:
            rows[row["minute"]]["sent"] = row["n"]
    finished = (
        CommandRecord.objects.filter(finished_at__gte=start, status__in=OUTCOMES)
        .annotate(minute=TruncMinute("finished_at"))
        .values("minute", "status")
        .annotate(n=Count("id"))
    )
    for row in finished:
        if row["minute"] in rows:
            rows[row["minute"]][row["status"]] = row["n"]
    return {
        "window_minutes": WINDOW_MINUTES,
        "minutes": [
            {"minute": minute.isoformat().replace("+00:00", "Z"), **counts}
            for minute, counts in sorted(rows.items())
        ],
    }


def push_dashboard() -> bool:
    """Push the command statistics to staff sockets."""
    return broadcast.push_command_stats(command_stats())
