"""Past-state reads: `?as_of_version=N` or `?as_of=<ISO time>` on a detail endpoint.

The one read that does not come from the projection tables: the read models
hold the present only, so a past state is folded from the stream's events by
`projections.past` (the order summary projector's own handlers, the product
aggregate from a kept snapshot). The answer has the endpoint's usual fields
plus the version and the time it reflects. `min_position` does not apply (the
event store is never behind itself), and no `X-Read-Position` is sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from rest_framework import serializers, status

from api.errors import ApiError
from projections import past

from .errors import NotFoundError
from .params import InstantField, ReadQuery

PAST_PARAMS = ("as_of_version", "as_of")
# A stream version is a PostgreSQL integer.
MAX_VERSION = 2**31 - 1


class PastQuery(ReadQuery):
    """A detail read's parameters: `min_position`, or one of the past-state ones."""

    as_of_version = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_VERSION,
        help_text="Answer the state after this version of the stream (1 is its "
        "first event), folded from the event store. Beyond the current version: "
        "400 `version_beyond_head`. Not with `as_of` or `min_position`.",
    )
    as_of = InstantField(
        required=False,
        help_text="Answer the state as it was at this instant (ISO 8601; a date "
        "is its midnight UTC, no offset means UTC): after the last event recorded "
        "at or before it. Before the first event: 404. Not with `as_of_version` "
        "or `min_position`.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if "as_of_version" in attrs and "as_of" in attrs:
            raise serializers.ValidationError(
                {"as_of": ["Give as_of_version or as_of, not both."]}
            )
        if is_past(attrs) and "min_position" in attrs:
            raise serializers.ValidationError(
                {
                    "min_position": [
                        "A past state is read from the event store: "
                        "min_position does not apply."
                    ]
                }
            )
        return attrs


def is_past(params: dict[str, Any]) -> bool:
    """Return True if the read asks for a past state."""
    return any(name in params for name in PAST_PARAMS)


def as_of_version_field() -> serializers.IntegerField:
    """Return the answer's `as_of_version` field (set on past-state reads only)."""
    return serializers.IntegerField(
        required=False,
        help_text="Past-state reads only: the stream version this answer reflects.",
    )


def as_of_field() -> serializers.DateTimeField:
    """Return the answer's `as_of` field (set on past-state reads only)."""
    return serializers.DateTimeField(
        required=False,
        help_text="Past-state reads only: the instant this answer reflects (the "
        "`as_of` asked, capped at now; for `as_of_version`, when that version "
        "was recorded).",
    )


class VersionBeyondHeadError(ApiError):
    """`as_of_version` is beyond the stream's current version."""

    def __init__(self, *, asked: int, version: int) -> None:
        super().__init__(
            "version_beyond_head",
            f"Version {asked} is beyond the current version ({version}).",
            details={"as_of_version": asked, "version": version},
        )


class PastStaffOnlyError(ApiError):
    def __init__(self) -> None:
        super().__init__(
            "permission_denied",
            "Only staff may read a product's past states.",
            http_status=status.HTTP_403_FORBIDDEN,
        )


def answer(state: past.PastState, params: dict[str, Any]) -> dict[str, Any]:
    """Return the past state with the version and the instant it reflects."""
    asked = params.get("as_of")
    reflects = state.recorded_at if asked is None else min(asked, datetime.now(UTC))
    if "as_of_version" in params and params["as_of_version"] > state.version:
        raise VersionBeyondHeadError(
            asked=params["as_of_version"], version=state.version
        )
    return {**state.state, "as_of_version": state.version, "as_of": reflects}


def order_as_of(
    order_id: str, params: dict[str, Any], *, customer_id: int | None
) -> dict[str, Any]:
    """Return the order's past state if the customer (None: staff) may see it.

    Refuse with 404 otherwise, and when the order did not exist yet, before
    saying anything of its versions.
    """
    missing = NotFoundError("order_not_found", "No such order.", order_id=order_id[:64])
    key = _uuid(order_id, missing)
    state = past.order_as_of(
        key, version=params.get("as_of_version"), at=params.get("as_of")
    )
    if state is None or customer_id not in (None, state.state["customer_id"]):
        raise missing
    return answer(state, params)


def product_as_of(
    product_id: str, params: dict[str, Any], *, is_staff: bool
) -> dict[str, Any]:
    """Return the product's past state for staff; 403 for others, 404 if absent."""
    if not is_staff:
        raise PastStaffOnlyError()
    missing = NotFoundError(
        "product_not_found", "No such product.", product_id=product_id[:64]
    )
    key = _uuid(product_id, missing)
    state = past.product_as_of(
        key, version=params.get("as_of_version"), at=params.get("as_of")
    )
    if state is None:
        raise missing
    return answer(state, params)


def _uuid(value: str, missing: NotFoundError) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise missing from None


class PastReadMixin:
    """Skip the read-model consistency wait on past-state reads (no header)."""

    params: dict[str, Any]

    def check_consistency(self, min_position: int | None) -> None:
        if is_past(self.params):
            return
        super().check_consistency(min_position)  # type: ignore[misc]
