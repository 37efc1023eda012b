"""The write side's relays: effects and accepted commands, in the command worker.

Built on the generic commit-driven relay (`relays`): `RelayStep` delivers the
outbox's effects and `CommandsRelayStep` publishes accepted commands, each in a
thread of every worker that consumes `commands`.
"""

from __future__ import annotations

from relays import QueueRelayStep, Relay


def effects_relay() -> Relay:
    """Return the relay that delivers `commands_app.effects`."""
    from django.conf import settings

    from . import effects, outbox

    return Relay(
        outbox.CHANNEL, effects.drain_once, poll_seconds=settings.EFFECTS_POLL_SECONDS
    )


def commands_relay() -> Relay:
    """Return the relay that publishes accepted commands to the broker."""
    from django.conf import settings

    from . import acceptance

    return Relay(
        acceptance.CHANNEL,
        acceptance.publish_pending,
        poll_seconds=settings.COMMANDS_RELAY_POLL_SECONDS,
    )


class RelayStep(QueueRelayStep):
    """Run the effects relay in every worker that consumes `commands`."""

    queue = "commands"
    enabled_setting = "EFFECTS_RELAY_ENABLED"

    def make_relay(self) -> Relay:
        return effects_relay()


class CommandsRelayStep(QueueRelayStep):
    """Publish accepted commands from every worker that consumes `commands`."""

    queue = "commands"
    enabled_setting = "COMMANDS_RELAY_ENABLED"

    def make_relay(self) -> Relay:
        return commands_relay()
