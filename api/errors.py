"""One exception boundary: every error leaves the API as {code, message, details}."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response


class ApiError(exceptions.APIException):
    """An API refusal with a stable code and structured details."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        http_status: int = status.HTTP_400_BAD_REQUEST,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = http_status
        self.error_code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


_CODES = {
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


MAX_ERRORS = 20
OMITTED_KEY = "omitted_errors"


def cap_errors(detail: Any, limit: int = MAX_ERRORS) -> Any:
    """Return validation details holding at most `limit` messages.

    The messages past the first `limit` (depth first, in the body's order) are
    left out and counted under `omitted_errors`, so that a body with many bad
    items gets an answer of bounded size. A serializer that already left some
    out says how many under the same key, at any depth.
    """
    budget = [limit]
    omitted = [0]

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            kept = {}
            for key, value in node.items():
                if key == OMITTED_KEY and not isinstance(value, list | dict):
                    omitted[0] += int(value)  # counted where it was raised
                    continue
                capped = walk(value)
                if capped != {} and capped != []:
                    kept[key] = capped
            return kept
        if isinstance(node, list):
            items = [walk(item) for item in node]
            while items and items[-1] in ({}, []):
                items.pop()
            return items
        if budget[0] > 0:
            budget[0] -= 1
            return node
        omitted[0] += 1
        return {}

    capped = walk(detail)
    if omitted[0]:
        if not isinstance(capped, dict):
            capped = {"non_field_errors": capped}
        capped[OMITTED_KEY] = omitted[0]
    return capped


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details or {}}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Turn every exception DRF sees into the structured error body."""
    if isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DatabaseError) and "connection" in str(exc).lower()
    ):
        return Response(
            error_body("service_unavailable", "The database is unavailable; retry."),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "2"},
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        # DRF reads request.body before the parser sees the stream, so Django's
        # own size check is the one that fires.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = ApiError(
            "payload_too_large",
            f"The body is larger than {limit} bytes.",
            http_status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            details={"max_bytes": limit},
        )
    # Imported here: rest_framework.views imports the parser, which imports
    # this module, so a top-level import fails when this module loads first.
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ApiError):
        response.data = error_body(exc.error_code, exc.message, exc.details)
        for name, value in exc.headers.items():
            response[name] = value
        return response
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body(
            "validation_error", "The request body is not valid.", cap_errors(exc.detail)
        )
        return response
    code = next((code for cls, code in _CODES.items() if isinstance(exc, cls)), "error")
    message = str(getattr(exc, "detail", "")) or str(exc)
    response.data = error_body(code, message)
    return response


class ErrorOutput(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField()
