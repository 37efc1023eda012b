"""Dead letters: events a projection parked, and the ones waiting behind them.

Order per aggregate (stream) is kept: once an event of a stream is parked, the
projection's later events of that stream wait behind it, while other streams go
on. A replay drains a stream's parked and waiting events in order and stops at
the first that fails again.

A letter is written on a connection of its own and committed at once, so that
a round that rolls back afterwards (a later failure, a time limit) keeps it:
the next round, meeting the event again, leaves it parked instead of retrying
it. Such a letter lies beyond the projection's checkpoint until a round that
passes it commits; replays and rebuilds only settle letters the checkpoint has
passed, so that the events before them in their stream are applied first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Q
from django.utils import timezone

from commands_app.domain.events import upcast
from commands_app.eventstore import RecordedEvent

from .base import READ_DB, Projector, RetryBudget, apply_counting_tries
from .locks import projection_lock
from .models import Checkpoint, DeadLetter, DeadLetterStatus
from .registry import projector_class, projector_names

OPEN = (DeadLetterStatus.PARKED, DeadLetterStatus.WAITING)
# A replay waits this long for the projection's lock, then does not run.
REPLAY_LOCK_WAIT_SECONDS = 10.0


@dataclass
class Letters:
    """Where a projection's streams are blocked, and which events have a letter.

    A stream is blocked from its first open letter on: the events before it
    (met again after a round that did not commit) still apply.
    """

    blocked: dict[str, tuple[int, int]] = field(default_factory=dict)
    positions: set[int] = field(default_factory=set)

    def blocks(self, recorded: RecordedEvent) -> bool:
        """Say if the event must wait behind an open letter of its stream."""
        first = self.blocked.get(recorded.stream_id)
        return first is not None and (recorded.tx_id, recorded.position) > first

    def clear(self, events: Iterable[RecordedEvent]) -> bool:
        """Say if none of the events has a letter or waits behind one."""
        return not any(
            self.blocks(recorded) or recorded.position in self.positions
            for recorded in events
        )

    def block(self, recorded: RecordedEvent) -> None:
        """Make the later events of the event's stream wait behind it."""
        here = (recorded.tx_id, recorded.position)
        self.blocked[recorded.stream_id] = min(
            self.blocked.get(recorded.stream_id, here), here
        )


def letters_for(projection: str, events: Sequence[RecordedEvent]) -> Letters:
    """Return where streams are blocked, and the events given that have a letter.

    An event with a letter was parked by a round that did not commit (or its
    letter was discarded since): a runner leaves it to its letter.
    """
    return letters_of([projection], events)[projection]


def letters_of(
    projections: Sequence[str], events: Sequence[RecordedEvent]
) -> dict[str, Letters]:
    """Return `letters_for` of several projections over the same events, in one query.

    A round reads the events once for every projection; each one's share is a
    part of them, so a projection's letters at the other positions are never
    asked about.
    """
    rows = DeadLetter.objects.filter(
        Q(status__in=OPEN) | Q(position__in=[event.position for event in events]),
        projection__in=projections,
    ).values_list("projection", "stream_id", "tx_id", "position", "status")
    letters = {projection: Letters() for projection in projections}
    for projection, stream_id, tx_id, position, status in rows:
        mine = letters[projection]
        if status in OPEN:
            first = mine.blocked.get(stream_id, (tx_id, position))
            mine.blocked[stream_id] = min(first, (tx_id, position))
        mine.positions.add(position)
    return letters


_PARK_SQL = """
INSERT INTO read_dead_letters (projection, position, tx_id, stream_id, version,
    event_type, data, metadata, recorded_at, error, attempts, status, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s, %s, now())
ON CONFLICT (projection, position) DO NOTHING
"""


class LetterBox:
    """Park events on a read-database connection of its own, each committed at once.

    Opened on the first letter and closed on leaving the block: a round that
    parks nothing costs no connection.
    """

    def __init__(self) -> None:
        self._connection: BaseDatabaseWrapper | None = None

    def __enter__(self) -> LetterBox:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def park(
        self,
        projection: str,
        recorded: RecordedEvent,
        *,
        status: str,
        error: str = "",
        attempts: int = 0,
    ) -> None:
        """Keep an event aside for a projection, committed whatever follows."""
        if self._connection is None:
            self._connection = connections.create_connection(READ_DB)
        with self._connection.cursor() as cursor:
            cursor.execute(
                _PARK_SQL,
                [
                    projection,
                    recorded.position,
                    recorded.tx_id,
                    recorded.stream_id,
                    recorded.version,
                    recorded.type,
                    json.dumps(recorded.data),
                    json.dumps(recorded.metadata),
                    recorded.recorded_at,
                    error,
                    attempts,
                    status,
                ],
            )


def passed(checkpoint: Checkpoint) -> Q:
    """Select the letters at or before a checkpoint (their round committed)."""
    return Q(tx_id__lt=checkpoint.tx_id) | Q(
        tx_id=checkpoint.tx_id, position__lte=checkpoint.position
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
    locked_out: bool = False

    def __str__(self) -> str:
        if self.locked_out:
            return "not replayed: another runner holds the projection's lock"
        return f"replayed {self.replayed}, still parked {self.still_parked}"


def replay_dead_letters(projection: str | None = None) -> dict[str, ReplayResult]:
    """Re-apply parked events and those waiting behind them, in order per stream.

    Each projection's replay holds its lock, as a runner does; one whose lock
    stays held elsewhere (`REPLAY_LOCK_WAIT_SECONDS`) is not replayed.
    """
    names = [projection] if projection else list(projector_names())
    return {name: _replay(name) for name in names}


def _replay(name: str) -> ReplayResult:
    result = ReplayResult()
    projector = projector_class(name)()
    budget = RetryBudget()
    with transaction.atomic(using=READ_DB):
        if not projection_lock(name, timeout_seconds=REPLAY_LOCK_WAIT_SECONDS):
            return ReplayResult(locked_out=True)
        checkpoint = Checkpoint.objects.filter(name=name).first()
        if checkpoint is None:
            return result
        letters = list(
            DeadLetter.objects.select_for_update()
            .filter(passed(checkpoint), projection=name, status__in=OPEN)
            .order_by("stream_id", "tx_id", "position")
        )
        failed_streams: set[str] = set()
        for letter in letters:
            if letter.stream_id in failed_streams:
                continue
            if _replay_one(projector, letter, budget):
                result.replayed += 1
            else:
                failed_streams.add(letter.stream_id)
                result.still_parked += 1
        _set_last_error(name)
    return result


def _replay_one(projector: Projector, letter: DeadLetter, budget: RetryBudget) -> bool:
    error, tries = apply_counting_tries(projector, recorded_event(letter), budget)
    letter.attempts += tries
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
    """Mark open dead letters as applied once a rebuild has applied their events.

    A rebuild goes up to the live checkpoint: letters beyond it stay open.
    """
    checkpoint = Checkpoint.objects.filter(name=projection).first()
    if checkpoint is not None:
        DeadLetter.objects.filter(
            passed(checkpoint), projection=projection, status__in=OPEN
        ).update(status=DeadLetterStatus.REPLAYED, resolved_at=timezone.now())
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
