"""Per-user fixed-window rate limits in Redis, shared by the write and read sides.

A leaf package: the command API (commands_app) and the read API (queries_app)
both throttle through it, and neither may import the other. It imports Django,
DRF and redis-py only.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from typing import Any

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from redis import Connection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError
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
    count, ttl = _hit_script(cache)([redis_key], [window_seconds])
    return int(count), int(ttl)


class ScriptCall:
    """Run one Lua script by its SHA on Redis connections of its own.

    redis-py 8.1 spends more CPU around a command than on sending it and reading
    the answer: a deprecation check that inspects its arguments on every
    `get_connection`, a retry closure and an operation metric per call (the
    throttle's call took 167 µs of a request's CPU that way, 81 on its own
    connections: docs/performance.md). The throttle calls one script once per
    request, so it keeps idle connections made as the cache's pool makes them
    (same server, database, credentials and TLS), takes one per call and gives
    it back afterwards. A connection that failed is dropped; a failure on an
    idle one (Redis restarted, the connection timed out) is tried once more on
    a new connection (a hit that reached Redis before the failure then counts
    twice: a brake errs towards the limit). A script that Redis has forgotten
    (a restart, `SCRIPT FLUSH`) is sent whole once (EVAL), which caches it again.
    """

    def __init__(self, pool: ConnectionPool, script: str) -> None:
        self.pool = pool
        self.script = script
        self.sha = hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
        self.pid = os.getpid()
        self.idle: list[Connection] = []

    def __call__(self, keys: list[str], args: list[Any]) -> Any:
        if self.pid != os.getpid():  # a forked child: the parent's sockets are not ours
            self.pid, self.idle = os.getpid(), []
        try:
            conn = self.idle.pop()  # list.pop and append are atomic: threads share it
        except IndexError:
            return self.call_on(self.new_connection(), keys, args)
        try:
            return self.call_on(conn, keys, args)
        except (RedisConnectionError, RedisTimeoutError):
            return self.call_on(self.new_connection(), keys, args)

    def new_connection(self) -> Connection:
        pool = self.pool
        connection: Connection = pool.connection_class(**pool.connection_kwargs)
        return connection

    def call_on(self, conn: Connection, keys: list[str], args: list[Any]) -> Any:
        try:
            try:
                conn.send_command("EVALSHA", self.sha, len(keys), *keys, *args)
                reply = conn.read_response()
            except NoScriptError:
                conn.send_command("EVAL", self.script, len(keys), *keys, *args)
                reply = conn.read_response()
        except BaseException:
            conn.disconnect()
            raise
        self.idle.append(conn)
        return reply


@functools.cache
def _hit_script(cache: RedisCache) -> ScriptCall:
    # One per process, on the server of the cache's write connection pool.
    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
    return ScriptCall(client.connection_pool, HIT_SCRIPT)


class ReadThrottle(FixedWindowUserThrottle):
    """Limit each user's reads (read models, command status): READ_THROTTLE_RATE."""

    scope = "reads"
    rate_setting = "READ_THROTTLE_RATE"
