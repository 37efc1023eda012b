"""Per-user WebSocket slots, counted in Redis across every web process.

Each open socket holds one member of the sorted set `ws:slots:<user id>`,
scored with the time its slot expires. Taking a slot first drops expired
members, so the slots of a process that died (no disconnect ran) free
themselves after `WS_SLOT_TTL_SECONDS`; each process renews its live sockets'
slots every third of that time, in one round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from django.conf import settings
from redis.asyncio import BlockingConnectionPool, Redis

logger = logging.getLogger(__name__)

# Drop expired slots, refuse past the cap, else take a slot: atomic.
TAKE_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


def slot_key(user_id: int) -> str:
    return f"ws:slots:{int(user_id)}"


class SlotRegistry:
    """The slots of one process's sockets, on one event loop."""

    def __init__(self) -> None:
        self.client = Redis(
            connection_pool=BlockingConnectionPool.from_url(
                settings.REDIS_URL,
                max_connections=settings.WS_SLOT_POOL_MAX_CONNECTIONS,
                timeout=10,
                socket_timeout=5,
                socket_connect_timeout=5,
            )
        )
        self.live: dict[str, int] = {}
        self.renewer: asyncio.Task[None] | None = None

    async def take(self, user_id: int, channel: str) -> bool:
        ttl = settings.WS_SLOT_TTL_SECONDS
        now = time.time()
        taken = await self.client.eval(
            TAKE_SCRIPT,
            1,
            slot_key(user_id),
            now,
            now + ttl,
            settings.WS_MAX_CONNECTIONS_PER_USER,
            channel,
            ttl,
        )
        if taken:
            self.live[channel] = user_id
            if self.renewer is None or self.renewer.done():
                self.renewer = asyncio.create_task(self.renew_forever())
        return bool(taken)

    async def release(self, user_id: int, channel: str) -> None:
        self.live.pop(channel, None)
        await self.client.zrem(slot_key(user_id), channel)

    async def renew(self) -> None:
        ttl = settings.WS_SLOT_TTL_SECONDS
        expires = time.time() + ttl
        async with self.client.pipeline(transaction=False) as pipe:
            for channel, user_id in list(self.live.items()):
                pipe.zadd(slot_key(user_id), {channel: expires}, xx=True)
                pipe.expire(slot_key(user_id), ttl)
            await pipe.execute()

    async def renew_forever(self) -> None:
        while self.live:
            await asyncio.sleep(settings.WS_SLOT_TTL_SECONDS / 3)
            try:
                await self.renew()
            except Exception:
                logger.warning("WebSocket slots not renewed", exc_info=True)


_registries: dict[asyncio.AbstractEventLoop, SlotRegistry] = {}


def registry() -> SlotRegistry:
    loop = asyncio.get_running_loop()
    if loop not in _registries:
        for closed in [known for known in _registries if known.is_closed()]:
            del _registries[closed]
        _registries[loop] = SlotRegistry()
    return _registries[loop]


async def take(user_id: int, channel: str) -> bool:
    """Take a slot for one socket; False when the user has all theirs open.

    When Redis cannot be asked the socket is let in (and logged): the cap is a
    brake against one user's runaway tabs, not worth refusing everyone.
    """
    try:
        return await registry().take(user_id, channel)
    except Exception:
        logger.warning("WebSocket slot not counted", exc_info=True)
        return True


async def release(user_id: int, channel: str) -> None:
    """Give a socket's slot back (it expires by itself should this fail)."""
    with contextlib.suppress(Exception):
        await registry().release(user_id, channel)
