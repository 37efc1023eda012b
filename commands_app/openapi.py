"""OpenAPI for command bodies: what the strict serializers refuse, the schema says.

Imported by `api.py`, which registers the extension with drf-spectacular.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from api.errors import ErrorOutput

# DRF refuses NUL characters in every CharField and, once whitespace is
# trimmed, a blank value where blanks are not allowed.
NO_NUL = r"^[^\u0000]*$"
NOT_BLANK = r"^(?!\s*$)[^\u0000]*$"


class StrictSerializerExtension(OpenApiSerializerExtension):
    """Declare `additionalProperties: false` and the text rules DRF applies."""

    target_class = "api.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        schema.pop("description", None)
        for name, field in self.target.fields.items():
            prop = schema["properties"].get(name)
            if (
                prop is None
                or not isinstance(field, serializers.CharField)
                or "pattern" in prop
            ):
                continue
            prop["pattern"] = NO_NUL if field.allow_blank else NOT_BLANK
        # A body must carry at least one of these optional fields (update-order).
        at_least_one = getattr(self.target, "at_least_one_of", ())
        if at_least_one:
            schema["anyOf"] = [{"required": [name]} for name in at_least_one]
        return schema


def _refusal(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorOutput, description)


UNAVAILABLE = _refusal(
    "The database is unreachable (`service_unavailable`); retry after `Retry-After`."
)
SUBMIT_REFUSALS = {
    400: _refusal(
        "The body is not valid (`validation_error`, at most 20 messages in "
        "`details`, the rest counted in `details.omitted_errors`), not JSON "
        "(`malformed_request`), or the Idempotency-Key is malformed."
    ),
    401: _refusal("Not signed in (`not_authenticated`, `authentication_failed`)."),
    403: _refusal(
        "A staff command from a customer, checked before the body is read, or "
        "paying another's order as staff (`permission_denied`)."
    ),
    404: _refusal("The order is absent or another customer's (`order_not_found`)."),
    413: _refusal("The body is larger than the limit (`payload_too_large`)."),
    415: _refusal("The body is not `application/json` (`unsupported_media_type`)."),
    422: _refusal(
        "The Idempotency-Key was used with another body (`idempotency_key_reused`)."
    ),
    429: _refusal("Too many commands (`throttled`); retry after `Retry-After`."),
    503: UNAVAILABLE,
}
STATUS_REFUSALS = {
    401: _refusal("Not signed in (`not_authenticated`, `authentication_failed`)."),
    404: _refusal("No such command, or another user's (`not_found`)."),
    503: UNAVAILABLE,
}
