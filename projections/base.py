"""The projector framework: named projectors with one handler per event type.

A projector writes through `self.sql()`, whose `{table}` placeholders name its
tables; the same handler code writes the live tables or a rebuild's shadow
tables (same names with a suffix), so that a rebuild replays exactly what the
live projection ran.
"""

from __future__ import annotations

import re
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from django.conf import settings
from django.db import connections, transaction

from commands_app.domain.events import EVENT_TYPES, Event
from commands_app.eventstore import RecordedEvent

READ_DB = "read"
# Pauses between the tries of a failing handler, bounded to about a second.
DEFAULT_RETRY_DELAYS = (0.05, 0.15, 0.3, 0.5)


def handler_name(event_class: type[Event]) -> str:
    """Return the handler method name for an event class: `on_order_placed`."""
    return "on_" + re.sub(r"(?<!^)(?=[A-Z])", "_", event_class.__name__).lower()


class Projector:
    """Turn events into read-table rows; idempotent, so replays change nothing.

    Handlers are `on_<event_snake_name>(event, recorded)`. Event types without a
    handler, and types this code does not know, are passed over.
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

    def handles(self, recorded: RecordedEvent) -> bool:
        """Return True if this projector has a handler for the event's type."""
        event_class = EVENT_TYPES.get(recorded.type)
        return event_class is not None and event_class in self.handlers

    def apply(self, recorded: RecordedEvent) -> None:
        """Apply one event; pass over types without a handler."""
        if not self.handles(recorded):
            return
        event = recorded.to_domain()
        getattr(self, self.handlers[type(event)])(event, recorded)

    def flush(self) -> None:
        """Write what handlers deferred to the end of a batch (same transaction)."""

    def sql(self, query: str, params: Sequence[Any] = ()) -> int:
        """Run one statement on the read database; return the row count."""
        with connections[READ_DB].cursor() as cursor:
            cursor.execute(query.format_map(self.table_names), params)
            return cursor.rowcount


def retry_delays() -> tuple[float, ...]:
    return tuple(getattr(settings, "PROJECTION_RETRY_DELAYS", DEFAULT_RETRY_DELAYS))


def apply_with_retries(projector: Projector, recorded: RecordedEvent) -> str | None:
    """Apply one event in a savepoint, retrying with backoff; return the error.

    Return None on success, else the last traceback. Must run inside a
    transaction of the read database: a failed try rolls back to its savepoint.
    """
    error = ""
    delays = retry_delays()
    for attempt in range(len(delays) + 1):
        try:
            with transaction.atomic(using=READ_DB):
                projector.apply(recorded)
        except Exception:
            error = traceback.format_exc()
            if attempt < len(delays):
                time.sleep(delays[attempt])
        else:
            return None
    return error


@contextmanager
def pipelined() -> Iterator[None]:
    """Send the read database statements without waiting for each answer.

    Runs in one savepoint: psycopg's pipeline mode sends every statement at
    once and raises the first failure when the block ends, which rolls the
    savepoint back. Applying a batch this way saves the two or three round
    trips per event of `apply_with_retries`; a caller falls back to it, event
    by event, when the block fails.
    """
    connection = connections[READ_DB]
    with transaction.atomic(using=READ_DB):
        connection.ensure_connection()
        with connection.connection.pipeline():
            yield
