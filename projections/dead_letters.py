"""Dead letters: events a projection parked, and the ones waiting behind them.

Order per aggregate (stream) is kept: once an event of a stream is parked, the
projection's later events of that stream wait behind it, while other streams go
on. A replay drains a stream's parked and waiting events in order and stops at
the first that fails again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from commands_app.domain.events import upcast
from commands_app.eventstore import RecordedEvent

from .base import READ_DB, Projector, apply_with_retries, retry_delays
from .locks import projection_lock
from .models import Checkpoint, DeadLetter, DeadLetterStatus
from .registry import projector_class, projector_names

OPEN = (DeadLetterStatus.PARKED, DeadLetterStatus.WAITING)


def blocked_streams(projection: str) -> set[str]:
    """Return the streams of a projection that have a parked or waiting event."""
    return set(
        DeadLetter.objects.filter(projection=projection, status__in=OPEN)
        .values_list("stream_id", flat=True)
        .distinct()
    )


def park(
    projection: str,
    recorded: RecordedEvent,
    *,
    status: str,
    error: str = "",
    attempts: int = 0,
) -> None:
    """Keep an event aside for a projection (inside the batch transaction)."""
    DeadLetter.objects.bulk_create(
        [
            DeadLetter(
                projection=projection,
                position=recorded.position,
                tx_id=recorded.tx_id,
                stream_id=recorded.stream_id,
                version=recorded.version,
                event_type=recorded.type,
                data=recorded.data,
                metadata=recorded.metadata,
                recorded_at=recorded.recorded_at,
                error=error,
                attempts=attempts,
                status=status,
            )
        ],
        ignore_conflicts=True,
    )


def recorded_event(letter: DeadLetter) -> RecordedEvent:
    # A letter parked before an upcaster existed holds the older version.
    event_type, data = upcast(letter.event_type, letter.data)
    return RecordedEvent(
        position=letter.position,
        tx_id=letter.tx_id,
        stream_id=letter.stream_id,
        version=letter.version,
        type=event_type,
        data=data,
        metadata=letter.metadata,
        recorded_at=letter.recorded_at,
    )


@dataclass
class ReplayResult:
    replayed: int = 0
    still_parked: int = 0


def replay_dead_letters(projection: str | None = None) -> dict[str, ReplayResult]:
    """Re-apply parked events and those waiting behind them, in order per stream."""
    names = [projection] if projection else list(projector_names())
    return {name: _replay(name) for name in names}


def _replay(name: str) -> ReplayResult:
    result = ReplayResult()
    projector = projector_class(name)()
    with transaction.atomic(using=READ_DB):
        projection_lock(name, timeout_seconds=30)
        letters = list(
            DeadLetter.objects.select_for_update()
            .filter(projection=name, status__in=OPEN)
            .order_by("stream_id", "tx_id", "position")
        )
        failed_streams: set[str] = set()
        for letter in letters:
            if letter.stream_id in failed_streams:
                continue
            if _replay_one(projector, letter):
                result.replayed += 1
            else:
                failed_streams.add(letter.stream_id)
                result.still_parked += 1
        _set_last_error(name)
    return result


def _replay_one(projector: Projector, letter: DeadLetter) -> bool:
    error = apply_with_retries(projector, recorded_event(letter))
    letter.attempts += len(retry_delays()) + 1 if error else 1
    if error is None:
        letter.status = DeadLetterStatus.REPLAYED
        letter.resolved_at = timezone.now()
    else:
        letter.status = DeadLetterStatus.PARKED
        letter.error = error
    letter.save(update_fields=["status", "attempts", "error", "resolved_at"])
    return error is None


def discard_dead_letters(ids: Iterable[int]) -> int:
    """Give up on parked events; the ones waiting behind them go on waiting.

    A later replay applies the waiting ones.
    """
    with transaction.atomic(using=READ_DB):
        count = DeadLetter.objects.filter(pk__in=list(ids), status__in=OPEN).update(
            status=DeadLetterStatus.DISCARDED, resolved_at=timezone.now()
        )
    return count


def discarded_positions(projection: str) -> set[int]:
    return set(
        DeadLetter.objects.filter(
            projection=projection, status=DeadLetterStatus.DISCARDED
        ).values_list("position", flat=True)
    )


def resolve_by_rebuild(projection: str) -> None:
    """Mark open dead letters as applied once a rebuild has applied their events."""
    DeadLetter.objects.filter(projection=projection, status__in=OPEN).update(
        status=DeadLetterStatus.REPLAYED, resolved_at=timezone.now()
    )
    _set_last_error(projection)


def _set_last_error(name: str) -> None:
    parked = (
        DeadLetter.objects.filter(projection=name, status=DeadLetterStatus.PARKED)
        .order_by("position")
        .first()
    )
    text = (
        ""
        if parked is None
        else f"event {parked.position} parked: {_last_line(parked.error)}"
    )
    Checkpoint.objects.filter(Q(name=name)).update(last_error=text)


def _last_line(error: str) -> str:
    lines = [line for line in error.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""
