"""Celery shells over the runner: wake-ups, the beat safety net, rebuilds."""

from __future__ import annotations

import functools
import logging

import redis
from celery import shared_task
from django.conf import settings

from . import lag, maintenance, runner

logger = logging.getLogger(__name__)

# Set by the write side (SET NX) when it enqueues a wake-up; see commands_app/push.py.
WAKE_KEY = "projections:wake-queued"
# Bounded below the task time limits; the beat safety net or the next wake-up goes on.
MAX_DRAIN_SECONDS = 120.0


@functools.cache
def _redis() -> redis.Redis:
    """Return the process's client (a connection kept, not one per wake-up)."""
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
    )


def clear_wake_flag() -> None:
    """Let commits from now on enqueue another run (before reading any event)."""
    try:
        _redis().delete(WAKE_KEY)
    except Exception:
        logger.warning("could not clear the projection wake-up flag", exc_info=True)


@shared_task(name="projections.catch_up", acks_late=True, ignore_result=True)
def catch_up_task() -> None:
    """Bring every projection up to the event store; safe to deliver twice."""
    clear_wake_flag()
    runner.drain(max_seconds=MAX_DRAIN_SECONDS)
    lag.report_lag()


# Maintenance tasks: queued by maintenance.queue_job on the maintenance queue,
# with long time limits, and acknowledged on receipt (see projections/maintenance.py).
@shared_task(name="projections.rebuild", acks_late=False, ignore_result=True)
def rebuild_task(name: str) -> None:
    """Rebuild one projection aside and swap it in."""
    maintenance.run_rebuild(name)


@shared_task(name="projections.verify", acks_late=False, ignore_result=True)
def verify_task(name: str) -> None:
    """Verify one projection against a replay aside."""
    maintenance.run_verify(name)
