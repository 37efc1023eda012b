"""How far each projection is behind the event store, pushed to staff dashboards.

The report is the `projections.signals.lag_reported` signal; the write side
connects its staff push to it, so that projections/ never imports it. Reports
are throttled to one per second over all projection workers.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

import redis
from django.conf import settings
from django.utils import timezone

from commands_app import eventstore

from . import signals
from .models import Checkpoint
from .registry import projector_names

logger = logging.getLogger(__name__)

THROTTLE_KEY = "projections:lag-reported"
THROTTLE_MS = 1000
COUNT_LIMIT = 100_000
# This process's own last report: the Redis throttle is not asked again sooner.
_reported_at = float("-inf")


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
    )


def projection_lag() -> list[dict[str, Any]]:
    """Return, per projection, the events it has still to apply and their age."""
    checkpoints = {
        row.name: row.to_position()
        for row in Checkpoint.objects.filter(name__in=projector_names())
    }
    now = timezone.now()
    lag = []
    for name in projector_names():
        checkpoint = checkpoints.get(name, eventstore.Position())
        oldest = eventstore.read_after(checkpoint, limit=1)
        seconds = (now - oldest[0].recorded_at).total_seconds() if oldest else 0.0
        lag.append(
            {
                "name": name,
                "lag_events": eventstore.count_after(checkpoint, limit=COUNT_LIMIT),
                "lag_seconds": round(max(seconds, 0.0), 3),
            }
        )
    return lag


def report_lag() -> bool:
    """Send `lag_reported`, at most once a second; say if it did."""
    global _reported_at
    if not signals.lag_reported.has_listeners():
        return False
    now = time.monotonic()
    if now - _reported_at < THROTTLE_MS / 1000:
        return False
    try:
        if not _redis().set(THROTTLE_KEY, 1, nx=True, px=THROTTLE_MS):
            return False
        _reported_at = now
        lag = projection_lag()
    except Exception:
        # The dashboard is a hint; the next report comes within seconds.
        logger.warning("projection lag report dropped", exc_info=True)
        return False
    return signals.send(signals.lag_reported, "projection lag", lag=lag)
