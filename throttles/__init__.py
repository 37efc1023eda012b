"""Per-user fixed-window rate limits in Redis, shared by the write and read sides.

A leaf package: the command API (commands_app) and the read API (queries_app)
both throttle through it, and neither may import the other. It imports Django,
DRF and redis-py only.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

logger = logging.getLogger(__name__)

# One round trip: count this request in the current window, start the window
# (with its expiry) on the first request, and say how long the window has left.
# A value that is not a counter (a previous throttle's timestamp list under the
# same key) starts a new window instead of failing every request until it expires.
HIT_SCRIPT = """
local count = redis.pcall('INCR', KEYS[1])
if type(count) == 'table' then
    redis.call('SET', KEYS[1], 1, 'EX', ARGV[1])
    count = 1
elseif count == 1 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
    ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


@functools.cache
def shared_cache() -> BaseCache:
    """Return one cache client (and Redis connection pool) for the process.

    Django keeps cache clients per context, not per thread, and the web server
    runs every request in a context of its own: `django.core.cache.cache` made
    a client, a pool and a new Redis connection for each command submitted.
    """
    return caches.create_connection(DEFAULT_CACHE_ALIAS)


class FixedWindowUserThrottle(UserRateThrottle):
    """Limit each user's requests to the rate named by `rate_setting`, in fixed windows.

    A user's window opens with their first request and lasts the rate's
    period; a counter in Redis (key `throttle_<scope>_<user id>` of the default
    cache) counts the requests in it, in one round trip per request. Up to
    N are allowed per window, so a burst straddling two windows may reach 2N
    within one period; a refused request's Retry-After is the window's rest.

    The rate is read per request (not at import), so settings can change it.
    When Redis is unreachable the throttle lets the request through: PostgreSQL
    is the truth, and losing a brake must not refuse requests.
    """

    scope: str
    rate_setting: str
    num_requests: int  # set from the rate by DRF
    duration: int
    retry_after: int | None = None

    def get_rate(self) -> str:
        return str(getattr(settings, self.rate_setting))

    def allow_request(self, request: Request, view: Any) -> bool:
        self.cache = shared_cache()
        if self.rate is None or not isinstance(self.cache, RedisCache):
            return self.allow_request_by_history(request, view)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        try:
            count, ttl = self.hit(self.cache, self.key, self.duration)
        except Exception:
            logger.warning(
                "%s throttle unavailable; allowing", self.scope, exc_info=True
            )
            return True
        self.retry_after = max(int(ttl), 1)
        return count <= self.num_requests

    def allow_request_by_history(self, request: Request, view: Any) -> bool:
        """Apply DRF's own throttle (a cache other than Redis, or no rate)."""
        try:
            return super().allow_request(request, view)
        except Exception:
            logger.warning(
                "%s throttle unavailable; allowing", self.scope, exc_info=True
            )
            return True

    def hit(self, cache: RedisCache, key: str, window_seconds: int) -> tuple[int, int]:
        """Count this request (a method, so that a subclass may reach it otherwise)."""
        return hit(cache, key, window_seconds)

    def wait(self) -> float | None:
        if self.retry_after is not None:
            return float(self.retry_after)
        return super().wait()


def hit(cache: RedisCache, key: str, window_seconds: int) -> tuple[int, int]:
    """Count a request under `key`; return the window's count and seconds left."""
    redis_key = cache.make_and_validate_key(key)
    count, ttl = _hit_script(cache)(keys=[redis_key], args=[window_seconds])
    return int(count), int(ttl)


@functools.cache
def _hit_script(cache: RedisCache) -> Any:
    # Registered once per process on the cache's write connection pool: it then
    # runs by its SHA (EVALSHA), and redis-py loads it again if Redis forgot it.
    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
    return client.register_script(HIT_SCRIPT)


class ReadThrottle(FixedWindowUserThrottle):
    """Limit each user's reads (read models, command status): READ_THROTTLE_RATE."""

    scope = "reads"
    rate_setting = "READ_THROTTLE_RATE"
