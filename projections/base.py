"""The projector framework: named projectors with one handler per event type.

A batch of events is applied set-based: each handler stages the rows its event
changes (`self.staged`), then the projector's `write()` sends a small fixed
number of statements per table for the whole batch, whatever its size. The
live runner, replays and rebuilds all go through `apply_decoded`, so that a
rebuild writes exactly what the live projection wrote. A projector writes
through `self.sql()`, whose `{table}` placeholders name its tables: the live
tables, or a rebuild's shadow tables (same names with a suffix).
"""

from __future__ import annotations

import json
import re
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from django.conf import settings
from django.db import connections, transaction

from commands_app.domain.events import EVENT_TYPES, Event
from commands_app.eventstore import RecordedEvent

READ_DB = "read"
# Pauses between the tries of a failing handler, bounded to about a second.
DEFAULT_RETRY_DELAYS = (0.05, 0.15, 0.3, 0.5)
# Pauses a whole round (or replay) may spend on retries; then failures park at once.
DEFAULT_RETRY_BUDGET_SECONDS = 3.0

# An event with its domain form, decoded once for every projector of a batch.
Decoded = tuple[RecordedEvent, Event]


def handler_name(event_class: type[Event]) -> str:
    """Return the handler method name for an event class: `on_order_placed`."""
    return "on_" + re.sub(r"(?<!^)(?=[A-Z])", "_", event_class.__name__).lower()


def decode(events: Iterable[RecordedEvent]) -> list[Decoded]:
    """Decode the events of known types; pass over the others."""
    return [
        (recorded, recorded.to_domain())
        for recorded in events
        if recorded.type in EVENT_TYPES
    ]


class Staged:
    """The rows a batch's handlers stage, by kind, for one statement per kind.

    Inserts keep the first row per key, as an insert that finds its row does
    nothing. Updates keep an event only when its position is above those kept
    before it for the same key, as an update skips a row already at a later
    position; the statement then keeps those above the row's stored position.
    """

    def __init__(self) -> None:
        self._inserts: dict[str, dict[Any, dict[str, Any]]] = {}
        self._updates: dict[str, list[dict[str, Any]]] = {}
        self._latest: dict[str, dict[Any, int]] = {}

    def insert(self, kind: str, key: Any, row: dict[str, Any]) -> None:
        self._inserts.setdefault(kind, {}).setdefault(key, row)

    def update(self, kind: str, key: Any, position: int, row: dict[str, Any]) -> None:
        latest = self._latest.setdefault(kind, {})
        if position <= latest.get(key, 0):
            return
        latest[key] = position
        self._updates.setdefault(kind, []).append(row)

    def inserts(self, kind: str) -> list[dict[str, Any]]:
        return list(self._inserts.get(kind, {}).values())

    def updates(self, kind: str) -> list[dict[str, Any]]:
        return self._updates.get(kind, [])

    def kinds(self) -> set[str]:
        """Return the kinds of rows staged (a past-state fold checks it knows them)."""
        return {kind for kind, rows in self._inserts.items() if rows} | {
            kind for kind, rows in self._updates.items() if rows
        }


class Projector:
    """Turn events into read-table rows; idempotent, so replays change nothing.

    Handlers are `on_<event_snake_name>(event, recorded)`: each stages the rows
    its event changes in `self.staged`, and `write()` applies what a batch
    staged. Every row keeps the position of the last event applied to it and
    only takes events above it. Event types without a handler, and types this
    code does not know, are passed over.
    """

    name: ClassVar[str] = ""
    tables: ClassVar[tuple[str, ...]] = ()
    handlers: ClassVar[dict[type[Event], str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.handlers = {
            event_class: handler_name(event_class)
            for event_class in EVENT_TYPES.values()
            if callable(getattr(cls, handler_name(event_class), None))
        }

    def __init__(self, *, suffix: str = "") -> None:
        self.suffix = suffix
        quote = connections[READ_DB].ops.quote_name
        self.table_names = {table: quote(table + suffix) for table in self.tables}
        self.staged = Staged()

    def handles(self, recorded: RecordedEvent) -> bool:
        """Return True if this projector has a handler for the event's type."""
        event_class = EVENT_TYPES.get(recorded.type)
        return event_class is not None and event_class in self.handlers

    def apply(self, recorded: RecordedEvent) -> None:
        """Apply one event; pass over types without a handler."""
        self.apply_batch([recorded])

    def apply_batch(self, events: Sequence[RecordedEvent]) -> None:
        """Apply events in reader order, set-based; pass over unhandled types."""
        self.apply_decoded(decode(event for event in events if self.handles(event)))

    def apply_decoded(self, batch: Sequence[Decoded]) -> None:
        """Apply decoded events in reader order with a few statements per table.

        The rows are the same as applying the events one by one.
        """
        self.staged = Staged()
        try:
            for recorded, event in batch:
                handler = self.handlers.get(type(event))
                if handler is not None:
                    getattr(self, handler)(event, recorded)
            self.write(self.staged)
        finally:
            self.staged = Staged()

    def write(self, staged: Staged) -> None:
        """Send the statements for what a batch's handlers staged."""

    def sql(self, query: str, params: Sequence[Any] = ()) -> int:
        """Run one statement on the read database; return the row count."""
        with connections[READ_DB].cursor() as cursor:
            cursor.execute(query.format_map(self.table_names), params)
            return cursor.rowcount

    def sql_rows(self, query: str, rows: list[dict[str, Any]]) -> None:
        """Run one statement over staged rows (`%s` is their JSON), if any."""
        if rows:
            self.sql(query, [json.dumps(rows)])


def retry_delays() -> tuple[float, ...]:
    return tuple(getattr(settings, "PROJECTION_RETRY_DELAYS", DEFAULT_RETRY_DELAYS))


class RetryBudget:
    """The time one round (or replay) may pause between tries of failing events.

    A fault that hits every event must not cost each one the whole backoff
    inside one transaction: once the budget is spent, a failing event gets a
    single try and parks.
    """

    def __init__(self, seconds: float | None = None) -> None:
        if seconds is None:
            seconds = getattr(
                settings,
                "PROJECTION_RETRY_BUDGET_SECONDS",
                DEFAULT_RETRY_BUDGET_SECONDS,
            )
        self.left = float(seconds)

    def take(self, delay: float) -> bool:
        """Spend `delay` seconds of the budget if it has them; say if it had."""
        if delay > self.left:
            return False
        self.left -= delay
        return True


def apply_with_retries(
    projector: Projector, recorded: RecordedEvent, budget: RetryBudget | None = None
) -> str | None:
    """Apply one event in a savepoint, retrying with backoff; return the error.

    Return None on success, else the last traceback. Must run inside a
    transaction of the read database: a failed try rolls back to its savepoint.
    A retry pauses only while `budget` (if given) has the time for it.
    """
    return apply_counting_tries(projector, recorded, budget)[0]


def apply_counting_tries(
    projector: Projector, recorded: RecordedEvent, budget: RetryBudget | None = None
) -> tuple[str | None, int]:
    """Do what `apply_with_retries` does; return the error and the tries made."""
    error = ""
    delays = retry_delays()
    for attempt in range(len(delays) + 1):
        try:
            with transaction.atomic(using=READ_DB):
                projector.apply(recorded)
        except Exception:
            error = traceback.format_exc()
            if attempt == len(delays):
                break
            if budget is not None and not budget.take(delays[attempt]):
                break
            time.sleep(delays[attempt])
        else:
            return None, attempt + 1
    return error, attempt + 1


@contextmanager
def pipelined() -> Iterator[None]:
    """Send the read database statements without waiting for each answer.

    Runs in one savepoint: psycopg's pipeline mode sends every statement at
    once and raises the first failure when the block ends, which rolls the
    savepoint back. A batch's few statements go without a round trip each; a
    caller falls back to `apply_with_retries`, event by event, when the block
    fails.
    """
    connection = connections[READ_DB]
    with transaction.atomic(using=READ_DB):
        connection.ensure_connection()
        with connection.connection.pipeline():
            yield
