"""Per-user rate limit on command submission, answered 429 with Retry-After."""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.base import BaseCache
from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

logger = logging.getLogger(__name__)


@functools.cache
def shared_cache() -> BaseCache:
    """Return one cache client (and Redis connection pool) for the process.

    Django keeps cache clients per context, not per thread, and the web server
    runs every request in a context of its own: `django.core.cache.cache` made
    a client, a pool and a new Redis connection for each command submitted.
    """
    return caches.create_connection(DEFAULT_CACHE_ALIAS)


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
        self.cache = shared_cache()
        try:
            return super().allow_request(request, view)
        except Exception:
            logger.warning("command throttle unavailable; allowing", exc_info=True)
            return True
