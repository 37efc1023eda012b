"""Answer rows as their output serializer would, without a serializer per request.

A ModelSerializer builds its fields from the model on every instantiation and
reads each value through a chain of generic lookups; a page of 20 orders cost
more in that than in its query. The serializers stay the description of each
answer (the OpenAPI schema is generated from them); a `RowPresenter` built once
from a serializer's fields turns `.values()` rows into the same dictionaries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rest_framework import serializers

# Values the database driver already returns in their output form (str, int,
# decoded JSON): the serializer's field would return them unchanged.
AS_STORED = (serializers.CharField, serializers.IntegerField)


class RowPresenter:
    """Turn `.values(*columns)` rows into `Output(row).data` dictionaries."""

    def __init__(self, output: type[serializers.BaseSerializer[Any]]) -> None:
        serializer = output()
        if not isinstance(serializer, serializers.Serializer):
            raise TypeError(f"{output.__name__} is not a Serializer")
        self.fields: list[tuple[str, str, Callable[[Any], Any] | None]] = []
        for name, field in serializer.fields.items():
            if field.write_only:
                continue
            source = field.source
            if not isinstance(source, str) or source == "*" or "." in source:
                raise ValueError(f"{output.__name__}.{name}: not a plain column")
            self.fields.append((name, source, converter(field)))
        self.columns = tuple(source for _, source, _ in self.fields)

    def one(self, row: dict[str, Any]) -> dict[str, Any]:
        """Return one row's answer, keys in the serializer's field order."""
        answer = {}
        for name, source, convert in self.fields:
            value = row[source]
            answer[name] = value if convert is None or value is None else convert(value)
        return answer

    def many(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.one(row) for row in rows]


def converter(field: serializers.Field) -> Callable[[Any], Any] | None:
    """Return the field's `to_representation`, or None where it changes nothing."""
    if isinstance(field, serializers.JSONField) and not field.binary:
        return None
    if isinstance(field, AS_STORED) and type(field).to_representation in (
        serializers.CharField.to_representation,
        serializers.IntegerField.to_representation,
    ):
        return None
    return field.to_representation


_PRESENTERS: dict[type[Any], RowPresenter] = {}


def presenter(output: type[serializers.BaseSerializer[Any]]) -> RowPresenter:
    """Return the presenter of an output serializer, built once per process."""
    found = _PRESENTERS.get(output)
    if found is None:
        # Two threads may both build it the first time: the same presenter.
        found = _PRESENTERS[output] = RowPresenter(output)
    return found
