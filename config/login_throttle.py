"""Sign-in throttling (django-axes): the client address and the 429 answer.

django-axes counts failed sign-ins on every path that calls Django's
`authenticate()` with the request: `POST /api/auth/token/`, `/login/` and
`/admin/login/`. Its backend comes first in AUTHENTICATION_BACKENDS and refuses
a locked-out username or address before the model backend hashes a password.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from api.auth import lockout_seconds


def client_ip(request: HttpRequest) -> str | None:
    """Return the client's address: REMOTE_ADDR, or the proxies' view of it.

    With CLIENT_IP_PROXY_COUNT=N (N trusted proxies in front, each appending the
    address it saw to X-Forwarded-For), the N-th entry from the right is the
    one the outermost trusted proxy saw; entries to its left are the client's
    own words and are ignored.
    """
    count = int(settings.CLIENT_IP_PROXY_COUNT)
    if count > 0:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= count:
            return hops[-count]
    return request.META.get("REMOTE_ADDR")


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """Answer a locked-out sign-in: 429 with Retry-After, JSON on the API."""
    retry_after = lockout_seconds(request)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {
                "code": "too_many_attempts",
                "message": "Too many failed sign-ins; try again later.",
                "details": {"retry_after_seconds": retry_after},
            },
            status=429,
        )
    else:
        response = render(
            request,
            "web/locked_out.html",
            {"retry_after_minutes": max(retry_after // 60, 1)},
            status=429,
        )
    response["Retry-After"] = str(retry_after)
    return response
