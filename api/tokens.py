"""API tokens: hashed at rest, expiring, revoked on logout and password change.

Tokens are django-rest-knox `AuthToken` rows: the database keeps a SHA-512
digest of each token (the primary key) and its first 15 characters (to find
it), never the token itself; a token is shown once, when it is issued. Every
token expires `API_TOKEN_TTL_HOURS` after it was issued.

Whenever tokens are revoked (logout, logout-all, a password change) the
`tokens_revoked` signal is sent with `user`, `request` (None outside a request,
e.g. a password changed in the admin or by `changepassword`) and `everywhere`
(True when all of the user's tokens went): what holds a session on a token,
such as an open WebSocket, listens to it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import router
from django.dispatch import Signal
from django.http import HttpRequest
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken

from .prepared import fetch_one

tokens_revoked = Signal()


def issue_token(user: Any) -> str:
    """Create a token for `user` and return it (the only time it is readable).

    The user's expired tokens are deleted on the way, so that they do not pile up.
    """
    AuthToken.objects.filter(user=user, expiry__lte=timezone.now()).delete()
    _instance, token = AuthToken.objects.create(user=user)
    return str(token)


def token_for(key: str) -> AuthToken | None:
    """Return the live token row for `key` (with its user), or None; one query.

    Every API request asks it, so it is one fixed statement, prepared
    (`api.prepared`), rather than an ORM query built anew each time: the same
    rows as `AuthToken.objects.select_related("user").filter(digest=...,
    expiry__gt=now, user__is_active=True).first()`.
    """
    try:
        digest = hash_token(key)
    except (TypeError, ValueError):
        return None
    query = _token_query()
    alias = router.db_for_read(AuthToken)
    row = fetch_one(alias, query.sql, [digest, timezone.now()])
    if row is None:
        return None
    split = len(query.token_fields)
    token = AuthToken.from_db(alias, query.token_fields, row[:split])
    user = query.user_model.from_db(alias, query.user_fields, row[split:])
    AuthToken.user.field.set_cached_value(token, user)
    return token


@dataclass(frozen=True)
class _TokenQuery:
    sql: str
    token_fields: list[str]
    user_model: Any
    user_fields: list[str]


@functools.cache
def _token_query() -> _TokenQuery:
    """Build the token lookup once per process, from the two models' fields."""
    user_model = get_user_model()
    token_meta, user_meta = AuthToken._meta, user_model._meta
    columns = [f"t.{f.column}" for f in token_meta.concrete_fields] + [
        f"u.{f.column}" for f in user_meta.concrete_fields
    ]
    user_fk = token_meta.get_field("user")
    sql = (
        f"SELECT {', '.join(columns)} FROM {token_meta.db_table} t "  # noqa: S608
        f"JOIN {user_meta.db_table} u ON u.{user_meta.pk.column} = t.{user_fk.column} "
        "WHERE t.digest = %s AND t.expiry > %s AND u.is_active LIMIT 1"
    )
    return _TokenQuery(
        sql=sql,
        token_fields=[f.attname for f in token_meta.concrete_fields],
        user_model=user_model,
        user_fields=[f.attname for f in user_meta.concrete_fields],
    )


def revoke_token(token: AuthToken, *, request: HttpRequest | None = None) -> None:
    """Delete one token (a logout)."""
    user = token.user
    token.delete()
    tokens_revoked.send(sender=AuthToken, user=user, request=request, everywhere=False)


def revoke_all_tokens(user: Any, *, request: HttpRequest | None = None) -> int:
    """Delete every token of `user`; return how many there were."""
    count, _ = AuthToken.objects.filter(user=user).delete()
    tokens_revoked.send(sender=AuthToken, user=user, request=request, everywhere=True)
    return int(count)


def revoke_tokens_on_password_change(
    sender: type, instance: Any, created: bool = False, **kwargs: Any
) -> None:
    """Revoke a user's tokens when their password was just changed (post_save).

    `set_password()` keeps the new raw password in `_password` until the save
    that stores it (Django's own hook for password validators); a hasher upgrade
    at login clears it before saving, so it revokes nothing.
    """
    if created or getattr(instance, "_password", None) is None:
        return
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and "password" not in update_fields:
        return
    revoke_all_tokens(instance)


class ExpiringTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <token>`: a live, unexpired token of an active user.

    knox's own class also loads every token of the user on each request to
    delete expired ones; here one indexed query finds the token by its digest,
    and expired tokens are deleted when the user signs in again.
    """

    def authenticate_credentials(self, token: bytes) -> tuple[Any, AuthToken]:
        from rest_framework.exceptions import AuthenticationFailed

        row = token_for(token.decode("utf-8", errors="replace"))
        if row is None:
            raise AuthenticationFailed("Invalid or expired token.")
        return row.user, row


class ExpiringTokenScheme(OpenApiAuthenticationExtension):
    """Describe `Authorization: Token <token>` in the OpenAPI schema (as before)."""

    target_class = ExpiringTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return dict(
            build_bearer_security_scheme_object(
                header_name="Authorization", token_prefix="Token"
            )
        )
