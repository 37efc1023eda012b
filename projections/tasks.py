"""Celery shells over the runner: the projector relay, the beat safety net, rebuilds."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from relays import QueueRelayStep, Relay

from . import lag, maintenance, runner

logger = logging.getLogger(__name__)

# Bounded below the task time limits; the relay or the next run goes on.
MAX_DRAIN_SECONDS = 120.0


@shared_task(name="projections.catch_up", acks_late=True, ignore_result=True)
def catch_up_task() -> None:
    """Bring every projection up to the event store (beat's safety net, by hand).

    Commits wake the projector relay (`ProjectorRelayStep`), not this task;
    beat still queues it now and then, for the lag report and for a
    projection worker started with the relay turned off.
    """
    runner.drain(max_seconds=MAX_DRAIN_SECONDS)
    lag.report_lag()


class ProjectorRelayStep(QueueRelayStep):
    """Run the projector relay in every worker that consumes `projections`.

    Every commit that appends events notifies `eventstore.PROJECTIONS_CHANNEL`;
    the relay coalesces the wake-ups into catch-up rounds (waiting
    `PROJECTIONS_COALESCE_SECONDS` when commits notified it during one), and polls every
    `PROJECTIONS_POLL_SECONDS` for a notification lost. Several workers may run
    it: the projections' advisory locks let one apply each projection.
    """

    queue = "projections"
    enabled_setting = "PROJECTIONS_RELAY_ENABLED"

    def make_relay(self, worker: Any) -> Relay:
        return runner.projector_relay()


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
