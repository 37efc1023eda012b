"""Scrape-time gauges of the read side: lag and dead letters per projection.

A few cheap queries per scrape (the checkpoints, one bounded count and one
single-row read of the event store per projection, one grouped count of open
dead letters); nothing on the projection's hot path.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from .lag import projection_lag
from .models import DeadLetter, DeadLetterStatus
from .registry import projector_names

OPEN_STATUSES = (DeadLetterStatus.PARKED.value, DeadLetterStatus.WAITING.value)


def open_dead_letters() -> dict[tuple[str, str], int]:
    """Return the number of parked and waiting events per (projection, status)."""
    counts: dict[tuple[str, str], int] = {
        (name, str(status)): 0 for name in projector_names() for status in OPEN_STATUSES
    }
    rows = (
        DeadLetter.objects.filter(status__in=OPEN_STATUSES)
        .values_list("projection", "status")
        .annotate(count=Count("id"))
        .order_by()
    )
    for projection, status, count in rows:
        counts[(projection, str(status))] = count
    return counts


class ProjectionCollector:
    """Report each projection's lag (events, seconds) and its dead letters."""

    def collect(self) -> Iterator[Metric]:
        events = GaugeMetricFamily(
            "cqrs_projection_lag_events",
            "Committed events a projection has still to apply (capped at 100000).",
            labels=["projection"],
        )
        seconds = GaugeMetricFamily(
            "cqrs_projection_lag_seconds",
            "Age of the oldest event a projection has still to apply (0: none).",
            labels=["projection"],
        )
        for lag in projection_lag():
            events.add_metric([lag["name"]], float(lag["lag_events"]))
            seconds.add_metric([lag["name"]], float(lag["lag_seconds"]))
        letters = GaugeMetricFamily(
            "cqrs_projection_dead_letters",
            "Open dead letters per projection: parked, or waiting behind one.",
            labels=["projection", "status"],
        )
        for (projection, status), count in sorted(open_dead_letters().items()):
            letters.add_metric([projection, str(status)], float(count))
        yield from (events, seconds, letters)
