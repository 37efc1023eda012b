"""Per-user rate limit on command submission, answered 429 with Retry-After."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

logger = logging.getLogger(__name__)


class CommandSubmitThrottle(UserRateThrottle):
    """Limit each user's submissions to `COMMAND_THROTTLE_RATE`.

    The rate is read per request (not at import), so settings can change it. The
    counts live in the cache (Redis); when Redis is unreachable the throttle
    lets the request through: PostgreSQL is the truth, and losing a brake must
    not refuse commands.
    """

    scope = "commands"

    def get_rate(self) -> str:
        return str(settings.COMMAND_THROTTLE_RATE)

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:
            logger.warning("command throttle unavailable; allowing", exc_info=True)
            return True
