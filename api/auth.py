"""Token sign-in for API clients: {"username", "password"} → {"token"}; sign-out.

Failed sign-ins are counted by django-axes (by username and by client address,
see config/login_throttle.py); a locked-out client gets 429 before any password
is hashed.
"""

from __future__ import annotations

import logging
from typing import Any

from axes.helpers import get_cool_off, get_failure_limit
from django.contrib.auth import authenticate, user_logged_out
from django.http import HttpRequest
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .errors import ApiError, ErrorOutput
from .serializers import StrictSerializer
from .tokens import (
    ExpiringTokenAuthentication,
    issue_token,
    revoke_all_tokens,
    revoke_token,
)

logger = logging.getLogger("security.login")


class TokenInput(StrictSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


def lockout_seconds(request: HttpRequest | None) -> int:
    """Return how long a lock-out lasts at most (from the last failure)."""
    cool_off = get_cool_off(request)
    return max(int(cool_off.total_seconds()), 1) if cool_off else 3600


def too_many_attempts(request: HttpRequest) -> ApiError:
    """Build the 429 answered to a client locked out after failed sign-ins."""
    retry_after = lockout_seconds(request)
    return ApiError(
        "too_many_attempts",
        "Too many failed sign-ins; try again later.",
        http_status=status.HTTP_429_TOO_MANY_REQUESTS,
        details={"retry_after_seconds": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


class ObtainTokenApi(APIView):
    """Exchange a username and password for an API token that expires."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(
        operation_id="auth_token",
        request=TokenInput,
        responses={
            200: inline_serializer("TokenOutput", {"token": serializers.CharField()}),
            400: ErrorOutput,
            429: ErrorOutput,
        },
    )
    def post(self, request: Request) -> Response:
        data = TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request=request._request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if getattr(request._request, "axes_locked_out", False):
            raise too_many_attempts(request._request)
        if user is None or not user.is_active:
            raise ApiError(
                "invalid_credentials", "Unable to sign in with these credentials."
            )
        return Response({"token": issue_token(user)})


class LogoutApi(APIView):
    """Revoke the token this request carries."""

    authentication_classes = (ExpiringTokenAuthentication,)
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        operation_id="auth_logout",
        request=None,
        responses={204: None, 401: ErrorOutput},
    )
    def post(self, request: Request) -> Response:
        revoke_token(request.auth, request=request._request)
        user_logged_out.send(
            sender=type(request.user), request=request._request, user=request.user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllApi(APIView):
    """Revoke every token of the signed-in user (every device)."""

    authentication_classes = (ExpiringTokenAuthentication,)
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        operation_id="auth_logout_all",
        request=None,
        responses={204: None, 401: ErrorOutput},
    )
    def post(self, request: Request) -> Response:
        revoke_all_tokens(request.user, request=request._request)
        user_logged_out.send(
            sender=type(request.user), request=request._request, user=request.user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


def log_lockout(
    sender: Any,
    request: HttpRequest | None,
    username: str | None = None,
    ip_address: str | None = None,
    **kwargs: Any,
) -> None:
    """Log one structured line when django-axes locks out or refuses a sign-in."""
    logger.warning(
        "sign-in locked out",
        extra={
            "event": "login_locked_out",
            "username": username,
            "client_ip": ip_address,
            "path": request.path if request is not None else None,
            "failure_limit": get_failure_limit(request, None),
            "cooloff_seconds": lockout_seconds(request),
        },
    )
