"""Give every HTTP request an id, a server span and log context."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from . import context, tracing

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is kept only when it is short and plain, so logs stay clean.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}\Z")
_UNTRACED = ("/metrics", "/healthz", "/readyz", "/static/")


class RequestContextMiddleware:
    """Bind a request id for log lines, open the request's span, echo the id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = given if _VALID_REQUEST_ID.match(given) else uuid.uuid4().hex
        with context.scope(request_id=request_id):
            if request.path.startswith(_UNTRACED):
                response = self.get_response(request)
            else:
                response = self._traced(request, request_id)
        response[REQUEST_ID_HEADER] = request_id
        return response

    def _traced(self, request: HttpRequest, request_id: str) -> HttpResponse:
        attributes = {
            "http.request.method": request.method,
            "url.path": request.path,
            "http.request.id": request_id,
        }
        with tracing.server_span(
            f"HTTP {request.method}", request.headers, attributes
        ) as span:
            response = self.get_response(request)
            match = request.resolver_match
            if match is not None and span.is_recording():
                span.update_name(f"HTTP {request.method} /{match.route}")
                span.set_attribute("http.route", f"/{match.route}")
            span.set_attribute("http.response.status_code", response.status_code)
        return response
