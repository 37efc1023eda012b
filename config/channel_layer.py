"""The channel layer on a bounded, blocking Redis connection pool.

channels-redis builds each host's pool with `ConnectionPool.from_url`, whose
redis-py 8 defaults are 100 connections, raising `MaxConnectionsError` past
them, and a 5 s socket timeout, the very time its BZPOPMIN blocks for. A burst
of sockets connecting at once (after a deploy) then failed in `group_add`, and
the receive loop's BZPOPMIN raced the read timeout. Here the pool is a
`BlockingConnectionPool`: past `max_connections` a call waits up to `timeout`
seconds for a free connection instead of failing, and every other pool keyword
of the host entry (`socket_timeout` above the BZPOPMIN block) reaches it.
"""

from __future__ import annotations

from typing import Any

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool


class BlockingPoolChannelLayer(RedisChannelLayer):
    """A RedisChannelLayer whose host entries make blocking pools."""

    def create_pool(self, index: int) -> BlockingConnectionPool:
        host: dict[str, Any] = dict(self.hosts[index])
        address = host.pop("address")
        return BlockingConnectionPool.from_url(address, **host)
