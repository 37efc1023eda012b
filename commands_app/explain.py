"""What the admin says about one command: its events, how far the read models
have got with them, its pushes, its trace and its effects."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from django.db.models.fields.json import KT

from projections.progress import applied_by

from .models import CommandRecord, Effect, StoredEvent

TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def command_events(record: CommandRecord) -> QuerySet[StoredEvent]:
    """Return the events a command appended, in global order (index on command_id)."""
    return events_of_command(record.id)


def events_of_command(command_id: UUID | str) -> QuerySet[StoredEvent]:
    return (
        StoredEvent.objects.alias(command_id=KT("metadata__command_id"))
        .filter(command_id=str(command_id))
        .order_by("position")
    )


def projection_progress(record: CommandRecord) -> dict[str, bool]:
    """Return, per projection, whether it has applied the command's events.

    A command's events are appended in one transaction, so a projection that
    has applied the last of them has applied them all. Empty when the command
    appended nothing.
    """
    if record.position is None:
        return {}
    return applied_by(record.position)


def trace_id(record: CommandRecord) -> str | None:
    """Return the W3C trace id of the request that sent the command, if traced."""
    match = TRACEPARENT.match(record.traceparent or "")
    return match.group(1) if match else None


def command_effects(record: CommandRecord) -> list[dict[str, Any]]:
    """Return the effects outside the store that the command's events decided.

    Each effect is a dict with `id`, `kind`, `status`, `key` (the idempotency
    key the other side honours), `attempts` and `last_error`, in the order
    they were written. The events a payment's effect appends carry the
    paying command's id, so their own effects (e-mails, integration events)
    are listed too.
    """
    positions = command_events(record).values_list("position", flat=True)
    return [
        {
            "id": effect.pk,
            "kind": effect.kind,
            "status": effect.status,
            "key": effect.idempotency_key,
            "attempts": effect.attempts,
            "last_error": effect.last_error,
        }
        for effect in Effect.objects.filter(event_position__in=positions).order_by("id")
    ]
