"""Query-string input: strict serializers for filters, ordering and `min_position`."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

BIGINT = 2**63 - 1
# Python's ISO parser tolerates stray characters (a trailing NUL); these do not.
ISO_CHARS = re.compile(r"[0-9T:.,+\-Z ]{10,40}")
# Read by the paginator, not by the endpoint's own serializer.
PAGINATION_PARAMS = frozenset({"cursor", "page_size"})


@extend_schema_field(
    {
        "type": "string",
        "description": "ISO 8601 date or date-time.",
        "example": "2024-05-01T12:00:00Z",
    }
)
class InstantField(serializers.Field):
    """An ISO 8601 date or date-time; a date is its midnight, naive means UTC."""

    default_error_messages = {
        "invalid": "Use an ISO 8601 date (2024-05-01) or date-time "
        "(2024-05-01T12:00:00Z).",
    }

    def to_internal_value(self, data: Any) -> datetime:
        if not isinstance(data, str) or not ISO_CHARS.fullmatch(data):
            self.fail("invalid")
        try:
            moment = parse_datetime(data)
            if moment is None:
                day = parse_date(data)
                if day is None:
                    self.fail("invalid")
                moment = datetime.combine(day, time.min)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.astimezone(UTC)
        except (ValueError, OverflowError):
            self.fail("invalid")

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class ReadQuery(serializers.Serializer):
    """Parameters every read accepts; unknown parameters are refused."""

    min_position = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=BIGINT,
        help_text="Answer only once the read model has applied this global "
        "position (a command's `position`); wait a bounded time, else 503 "
        "`read_model_behind`. A position beyond the event store's head is "
        "refused at once: 400 `position_beyond_head`.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        known = set(self.fields) | PAGINATION_PARAMS
        unknown = sorted(set(self.initial_data) - known)
        if unknown:
            raise serializers.ValidationError(
                {name[:64]: ["Unknown query parameter."] for name in unknown[:10]}
            )
        # DRF reads an empty optional parameter as an absent one; the schema
        # says a value is required when the parameter is sent.
        blank = sorted(
            name
            for name in known - {"cursor"}
            if name in self.initial_data and self.initial_data.get(name) == ""
        )
        if blank:
            raise serializers.ValidationError(
                {name: ["This parameter may not be blank."] for name in blank}
            )
        return attrs


def ordering_field(choices: list[str], default: str) -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=choices,
        required=False,
        default=default,
        help_text=f"One of {', '.join(choices)}; ties are broken by id.",
    )


def date_range_error(start: date | None, end: date | None, names: str) -> None:
    if start is not None and end is not None and start > end:
        raise serializers.ValidationError({names: ["The range ends before it starts."]})
