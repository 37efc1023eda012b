"""Refusals of the read API: `api.errors.ApiError`s with the read side's codes."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers, status

from api.errors import ApiError


class NotFoundError(ApiError):
    """Nothing the user may see has this id (also when someone else owns it)."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(
            code, message, http_status=status.HTTP_404_NOT_FOUND, details=details
        )


class ReadModelBehindError(ApiError):
    """The read model has not applied the requested position within the wait."""

    def __init__(self, *, min_position: int, position: int, retry_after: int) -> None:
        super().__init__(
            "read_model_behind",
            f"The read model has not applied position {min_position} yet; "
            "retry shortly.",
            http_status=status.HTTP_503_SERVICE_UNAVAILABLE,
            details={"min_position": min_position, "position": position},
            headers={"Retry-After": str(retry_after)},
        )


class PositionBeyondHeadError(ApiError):
    """`min_position` is beyond the event store's head: no command returned it."""

    def __init__(self, *, min_position: int, head: int) -> None:
        super().__init__(
            "position_beyond_head",
            f"Position {min_position} is beyond the event store's head ({head}).",
            details={"min_position": min_position, "head": head},
        )


class ReadErrorOutput(serializers.Serializer):
    """The body of every refusal."""

    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField()


class ReadBehindDetailsOutput(serializers.Serializer):
    min_position = serializers.IntegerField()
    position = serializers.IntegerField(
        help_text="The position the read model reflects now."
    )


class ReadBehindOutput(serializers.Serializer):
    """The body of a 503 when the read model is behind `min_position`."""

    code = serializers.ChoiceField(choices=["read_model_behind"])
    message = serializers.CharField()
    details = ReadBehindDetailsOutput()
