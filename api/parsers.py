"""A JSON parser that refuses what the standard library lets through.

Refused: non-finite numbers (NaN, Infinity, 1e400), NUL characters and lone
surrogates in strings or keys, nesting deeper than MAX_DEPTH, duplicate keys.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from .errors import ApiError

MAX_DEPTH = 10


def _reject_constant(name: str) -> Any:
    raise ParseError(f"JSON value {name} is not allowed.")


def _finite_float(text: str) -> float:
    # A literal such as 1e400 overflows to infinity without passing parse_constant.
    value = float(text)
    if not math.isfinite(value):
        raise ParseError(f"JSON number {text[:40]} is out of range.")
    return value


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ParseError(f"Duplicate key {key!r} in JSON object.")
        result[key] = value
    return result


def _check(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ParseError(f"JSON is nested deeper than {MAX_DEPTH} levels.")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise ParseError("NUL characters are not allowed.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ParseError("Lone surrogates are not allowed.") from None


def loads_strict(raw: bytes | str) -> Any:
    try:
        data = json.loads(
            raw,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=_pairs,
        )
    except RecursionError:
        raise ParseError("JSON is nested too deeply.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(f"Malformed JSON: {exc}") from None
    _check(data)
    return data


class StrictJSONParser(JSONParser):
    """Parse JSON bodies, refusing non-finite numbers, NULs and deep nesting."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise ApiError(
                "payload_too_large",
                f"The body is larger than {limit} bytes.",
                http_status=413,
                details={"max_bytes": limit},
            )
        if not raw:
            raise ParseError("The body is empty.")
        return loads_strict(raw)
