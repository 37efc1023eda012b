"""The write side's relays: effects and accepted commands, in the command worker.

Built on the generic commit-driven relay (`relays`): `RelayStep` delivers the
outbox's effects and `CommandsRelayStep` publishes accepted commands, each in a
thread of every worker that consumes `commands`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relays import QueueRelayStep, Relay

# The tasks that take over pending commands before they end
# (execution.execute_then_pending).
TAKING_OVER = frozenset({"commands.execute", "commands.execute_many"})


def effects_relay() -> Relay:
    """Return the relay that delivers `commands_app.effects`."""
    from django.conf import settings

    from . import effects, outbox

    return Relay(
        outbox.CHANNEL,
        effects.relay_drain,
        poll_seconds=settings.EFFECTS_POLL_SECONDS,
        coalesce_seconds=settings.EFFECTS_COALESCE_SECONDS,
    )


def commands_relay(held: Callable[[], bool] | None = None) -> Relay:
    """Return the relay that publishes accepted commands to the broker."""
    from django.conf import settings

    from . import acceptance

    return Relay(
        acceptance.CHANNEL,
        acceptance.publish_pending,
        poll_seconds=settings.COMMANDS_RELAY_POLL_SECONDS,
        held=held,
    )


def all_busy_taking_over(concurrency: int) -> Callable[[], bool]:
    """Return whether every process of this worker runs a task, one that takes over.

    Read from Celery's state of this (main) process. While it is true, the
    pending commands are claimed by the running command tasks themselves
    before they end (`execution.execute_then_pending`); a task published now
    would only wait for a process. A worker whose processes all run imports
    is not held: no task of its would take the pending commands.
    """
    from celery.worker import state

    def held() -> bool:
        try:
            names = [request.name for request in list(state.active_requests)]
        except RuntimeError:  # changed while read by this thread: not held
            return False
        return len(names) >= concurrency and not TAKING_OVER.isdisjoint(names)

    return held


class RelayStep(QueueRelayStep):
    """Run the effects relay in every worker that consumes `commands`."""

    queue = "commands"
    enabled_setting = "EFFECTS_RELAY_ENABLED"

    def make_relay(self, worker: Any) -> Relay:
        return effects_relay()


class CommandsRelayStep(QueueRelayStep):
    """Publish accepted commands from every worker that consumes `commands`.

    Held back while every process of the worker runs a command task, which
    takes the pending commands over (`all_busy_taking_over`).
    """

    queue = "commands"
    enabled_setting = "COMMANDS_RELAY_ENABLED"

    def make_relay(self, worker: Any) -> Relay:
        from django.conf import settings

        if settings.COMMANDS_TAKEOVER_SECONDS <= 0:
            return commands_relay()
        return commands_relay(held=all_busy_taking_over(worker.concurrency))
