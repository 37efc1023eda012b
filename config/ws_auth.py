"""WebSocket authentication: a token header (API clients) or a session (browsers).

A browser always sends `Origin`; it must name an allowed host. A client without
`Origin` is not a browser, so its cookies are ignored and only a token counts:
a cross-site page can therefore never ride a user's session.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import ParseResult

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser


class BrowserOriginValidator(OriginValidator):
    """Refuse a present Origin that is not an allowed host; allow a missing one."""

    def __init__(self, application: Any) -> None:
        super().__init__(application, settings.ALLOWED_HOSTS)

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None:
            return True
        return self.validate_origin(parsed_origin)


@database_sync_to_async
def _user_for_token(key: str) -> Any:
    from api.tokens import token_for

    token = token_for(key)
    return AnonymousUser() if token is None else token.user


class TokenOrSessionAuthMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.session_stack = AuthMiddlewareStack(inner)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        headers = dict(scope.get("headers", []))
        authorization = headers.get(b"authorization", b"").decode("latin1")
        if authorization:
            scheme, _, key = authorization.partition(" ")
            user = (
                await _user_for_token(key.strip())
                if scheme.lower() == "token" and key.strip()
                else AnonymousUser()
            )
            return await self.inner(dict(scope, user=user), receive, send)
        if b"origin" in headers:
            return await self.session_stack(scope, receive, send)
        return await self.inner(dict(scope, user=AnonymousUser()), receive, send)
