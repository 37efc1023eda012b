"""The base of every aggregate: a state folded from its stream's events.

An aggregate is loaded by applying its stored events in order (`from_events`),
decides by checking its state and recording new events (`record`), and is
saved by appending those `pending_events` to its stream at the `version` it was
loaded at (the store refuses the append if another writer got there first).

As in the `eventsourcing` library's aggregates, the state changes only in
`apply`, for a stored event and a new one alike, so a replayed stream and the
decision that wrote it agree.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeAlias, TypeVar

from .events import Event

Id = TypeVar("Id")


@dataclass(kw_only=True)
class Aggregate(ABC, Generic[Id]):
    """One stream's state; `version` counts the stored events folded into it."""

    id: Id
    # The number of stored events applied: the version the append checks.
    version: int = 0
    # Recorded since loading: applied to the state, not yet stored.
    pending_events: list[Event] = field(default_factory=list)

    # The stream's name before the id: "order" names the stream "order-<id>".
    STREAM_TYPE: ClassVar[str]

    @classmethod
    def stream_for(cls, aggregate_id: Id) -> str:
        """Return the name of the stream of the aggregate `aggregate_id`."""
        return f"{cls.STREAM_TYPE}-{aggregate_id}"

    @property
    def stream(self) -> str:
        return self.stream_for(self.id)

    @classmethod
    def from_events(cls, aggregate_id: Id, events: Iterable[Event]) -> Self:
        """Load an aggregate from its stored events (none: a new aggregate)."""
        aggregate = cls(id=aggregate_id)
        aggregate.fold(events)
        return aggregate

    def fold(self, events: Iterable[Event]) -> None:
        """Apply stored events, in stream order, after those already applied."""
        for event in events:
            self.apply(event)
            self.version += 1

    def record(self, event: Event) -> None:
        """Apply a new event and keep it, to be appended when the aggregate is saved."""
        self.apply(event)
        self.pending_events.append(event)

    @abstractmethod
    def apply(self, event: Event) -> None:
        """Change the state as `event` says; another kind of event changes nothing."""


# Any aggregate, whatever the type of its id: what a decision returns and the
# store appends.
AnyAggregate: TypeAlias = Aggregate[Any]
