"""Per-user rate limit on command submission, answered 429 with Retry-After."""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache

from throttles import FixedWindowUserThrottle, ReadThrottle, hit, shared_cache

__all__ = ["CommandSubmitThrottle", "ReadThrottle", "hit", "shared_cache"]


class CommandSubmitThrottle(FixedWindowUserThrottle):
    """Limit each user's submissions to `COMMAND_THROTTLE_RATE` (see `throttles`)."""

    scope = "commands"
    rate_setting = "COMMAND_THROTTLE_RATE"

    def hit(self, cache: RedisCache, key: str, window_seconds: int) -> tuple[int, int]:
        # Looked up here at call time, so that tests can replace this module's `hit`.
        return hit(cache, key, window_seconds)
