"""Errors Django answers outside DRF views, as the API's {code, message, details}."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults


def _body(code: str, message: str) -> dict[str, object]:
    return {"code": code, "message": message, "details": {}}


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Answer 404 for a URL no route matches: JSON under /api/, HTML elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(_body("not_found", "No such resource."), status=404)
    return defaults.page_not_found(request, exception or Exception())


def server_error(request: HttpRequest) -> HttpResponse:
    """Answer 500 with the error body under /api/ (never a stack trace)."""
    if request.path.startswith("/api/"):
        return JsonResponse(_body("server_error", "Something went wrong."), status=500)
    return defaults.server_error(request)
