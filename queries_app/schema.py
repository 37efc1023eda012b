"""OpenAPI description shared by the read endpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

from .base import READ_POSITION_HEADER
from .errors import ReadBehindOutput, ReadErrorOutput

READ_POSITION = OpenApiParameter(
    READ_POSITION_HEADER,
    OpenApiTypes.INT,
    location=OpenApiParameter.HEADER,
    response=[200],
    description="The global position this answer reflects at least: every read "
    "model behind the endpoint has applied the event at that position.",
)
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    location=OpenApiParameter.HEADER,
    response=[429, 503],
    description="Seconds to wait before retrying a read that was behind or throttled.",
)


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ReadErrorOutput, description=description)


def read_schema(
    *,
    query: type[serializers.Serializer],
    output: Any,
    summary: str,
    not_found: str | None = None,
    staff_only: bool | str = False,
    path_id: str | None = None,
    bad_request: str | None = None,
) -> Callable[[Any], Any]:
    """Describe one read: parameters, the answer and every refusal body.

    `staff_only` may be the 403's own description (staff only in some cases);
    `bad_request` adds a refusal to the 400's; the view's docstring describes it.
    """
    responses: dict[int, Any] = {
        200: output,
        400: error(
            "A query parameter is not valid (`validation_error`), or "
            "`min_position` is beyond the event store's head "
            "(`position_beyond_head`)." + (f" Or {bad_request}" if bad_request else "")
        ),
        401: error("Not signed in (`not_authenticated`)."),
        503: OpenApiResponse(
            ReadBehindOutput,
            description="`min_position` was not applied within the bounded wait "
            "(`read_model_behind`).",
        ),
    }
    responses[429] = error(
        "More reads than READ_THROTTLE_RATE allows (`throttled`); see Retry-After."
    )
    if staff_only:
        responses[403] = error(
            staff_only
            if isinstance(staff_only, str)
            else "Staff only (`permission_denied`)."
        )
    if not_found:
        responses[404] = error(not_found)
    parameters: list[Any] = [query, READ_POSITION, RETRY_AFTER]
    if path_id:
        parameters.append(
            OpenApiParameter(path_id, OpenApiTypes.UUID, OpenApiParameter.PATH)
        )
    return extend_schema(
        summary=summary,
        parameters=parameters,
        responses=responses,
    )
