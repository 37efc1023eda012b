"""Structured JSON logs, the ids of the current request or task, and masking.

`MaskingFilter` is the one place that keeps secrets out of the logs: card
numbers (by the Luhn check), CVCs, passwords, tokens, Authorization and Cookie
headers, whether they come in the message, its arguments, extra fields or an
exception's text. settings.LOGGING attaches it, with `ContextFilter`, to every
handler, so that records propagated from any logger pass through both.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from . import context

MASK = "***"
SENSITIVE_KEYS = frozenset(
    {
        "access_token",
        "api_key",
        "authorization",
        "card",
        "card_number",
        "cookie",
        "csrftoken",
        "cvc",
        "cvv",
        "pan",
        "passwd",
        "password",
        "refresh_token",
        "secret",
        "sessionid",
        "token",
        "x-api-key",
    }
)
_KEY_NAMES = "|".join(
    sorted((re.escape(key) for key in SENSITIVE_KEYS), key=len, reverse=True)
)
# `key=value`, `key: value`, `"key": "value"` and `'key': 'value'` forms.
_KEY_VALUE = re.compile(
    rf"""(?P<key>["']?\b(?:{_KEY_NAMES})\b["']?\s*[:=]\s*)"""
    r"""(?P<quote>["']?)(?P<value>(?:Token |Bearer |Basic )?[^"'\s,;&}\]]+)""",
    re.IGNORECASE,
)
_SCHEME_CREDENTIALS = re.compile(
    r"\b(?P<scheme>Token|Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE
)
# The lengths of card number the command API accepts; every one is masked.
CARD_MIN_DIGITS = 12
CARD_MAX_DIGITS = 19
_DIGIT_RUN = re.compile(
    rf"(?<![\d.])\d(?:[ -]?\d){{{CARD_MIN_DIGITS - 1},{CARD_MAX_DIGITS - 1}}}(?![\d.])"
)

# Attributes every LogRecord has; anything else was passed with `extra=`.
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    *context.FIELDS,
    "trace_id",
    "span_id",
}


def luhn_valid(digits: str) -> bool:
    """Return True if a digit string passes the Luhn check (card numbers do)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _mask_digits(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if not luhn_valid(digits):
        return match.group(0)
    return "*" * (len(digits) - 4) + digits[-4:]


def mask_text(text: str) -> str:
    """Return `text` with card numbers, credentials and secrets masked."""
    text = _KEY_VALUE.sub(lambda m: f"{m.group('key')}{m.group('quote')}{MASK}", text)
    text = _SCHEME_CREDENTIALS.sub(lambda m: f"{m.group('scheme')} {MASK}", text)
    return _DIGIT_RUN.sub(_mask_digits, text)


def mask_value(value: Any, key: str | None = None) -> Any:
    """Return a copy of a value with sensitive keys and text masked, recursively."""
    if key is not None and key.lower() in SENSITIVE_KEYS:
        return MASK
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_value(item) for item in value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return mask_text(repr(value))


class MaskingFilter(logging.Filter):
    """Mask secrets in a record before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is logged as it is
            message = str(record.msg)
        record.msg, record.args = mask_text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        for name, value in list(record.__dict__.items()):
            if name not in _RECORD_ATTRS:
                setattr(record, name, mask_value(value, name))
        return True


class ContextFilter(logging.Filter):
    """Add the request, correlation, command and task ids and the trace ids."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in context.FIELDS:
            if not hasattr(record, name):
                setattr(record, name, None)
        for name, value in context.current().items():
            setattr(record, name, value)
        from .tracing import current_ids

        record.trace_id, record.span_id = current_ids()
        return True


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for name in (*context.FIELDS, "trace_id", "span_id"):
            value = getattr(record, name, None)
            if value:
                entry[name] = value
        for name, value in record.__dict__.items():
            if name not in _RECORD_ATTRS and not name.startswith("_"):
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """A one-line text format with the ids, for reading on a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(
            f"{name}={value}"
            for name in ("request_id", "correlation_id", "command_id")
            if (value := getattr(record, name, None))
        )
        return f"{line} [{ids}]" if ids else line
