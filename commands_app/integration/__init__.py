"""Integration events: the public, versioned contract for other services.

`to_public` turns a committed internal event into its integration event (None
for internal-only events); `publish_event` publishes it through the broker that
`INTEGRATION_EVENTS_BROKER` names. Both are effects of committed events, called
at least once; docs/integration-events.md describes the contract.
"""

from __future__ import annotations

from django.conf import settings

from .. import outbox
from ..eventstore import RecordedEvent
from .contract import PUBLIC_TYPES, PUBLISHED, event_id, to_public
from .publishers import NullPublisher, get_publisher

__all__ = [
    "PUBLIC_TYPES",
    "PUBLISHED",
    "event_id",
    "publish_event",
    "register",
    "to_public",
]

EFFECT_KIND = "integration"


def register() -> None:
    """Register the `integration` effect kind, unless no broker is configured.

    With INTEGRATION_EVENTS_BROKER=none nothing is published, so no effect row
    is written for it either. Delivered in order per order (the outbox orders
    effects of one kind per stream).
    """
    if settings.INTEGRATION_EVENTS_BROKER == "none":
        outbox.KINDS.pop(EFFECT_KIND, None)
        return
    outbox.register(
        outbox.EffectKind(
            name=EFFECT_KIND,
            event_types=frozenset(PUBLISHED),
            perform=lambda effect, event: publish_event(event),
        )
    )


def publish_event(event: RecordedEvent) -> None:
    """Publish the integration event of `event`, if it has one.

    Raise when the broker did not take it, so that the caller retries; a
    retry publishes the same `event_id`.
    """
    publisher = get_publisher()
    if isinstance(publisher, NullPublisher):
        return
    message = to_public(event)
    if message is not None:
        publisher.publish(message)
