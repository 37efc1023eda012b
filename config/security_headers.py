"""Content-Security-Policy on every response but the pages that need inline code.

Django's SecurityMiddleware already sends `X-Content-Type-Options: nosniff`
(SECURE_CONTENT_TYPE_NOSNIFF), `Referrer-Policy` (SECURE_REFERRER_POLICY) and
`Cross-Origin-Opener-Policy`; Django 5.2 has no CSP of its own. The browser app
loads its scripts and styles from static files only, and its WebSocket is
same-origin, which `connect-src 'self'` allows.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class SecurityHeadersMiddleware:
    """Add CONTENT_SECURITY_POLICY unless the path is in CSP_EXEMPT_PATHS."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and not request.path.startswith(tuple(settings.CSP_EXEMPT_PATHS)):
            response.headers.setdefault("Content-Security-Policy", policy)
        return response
