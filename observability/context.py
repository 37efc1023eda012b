"""Ids that every log line of a request or a task carries (context variables)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

FIELDS = ("request_id", "correlation_id", "command_id", "task_id")

_vars: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(name, default=None) for name in FIELDS
}


def bind(**values: object) -> None:
    """Set ids for the rest of the current request or task."""
    for name, value in values.items():
        _vars[name].set(None if value is None else str(value))


def current() -> dict[str, str]:
    """Return the ids bound now, leaving out the unset ones."""
    return {
        name: value for name, var in _vars.items() if (value := var.get()) is not None
    }


@contextlib.contextmanager
def scope(**values: object) -> Iterator[None]:
    """Bind ids inside the block and restore the previous ones after it."""
    tokens = [(var, var.set(var.get())) for var in _vars.values()]
    bind(**values)
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
