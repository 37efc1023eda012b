"""The channel layer on a bounded, blocking Redis connection pool.

channels-redis builds each host's pool with `ConnectionPool.from_url`, whose
redis-py 8 defaults are 100 connections, raising `MaxConnectionsError` past
them, and a 5 s socket timeout, the very time its BZPOPMIN blocks for. A burst
of sockets connecting at once (after a deploy) then failed in `group_add`, and
the receive loop's BZPOPMIN raced the read timeout. Here the pool is a
`BlockingConnectionPool`: past `max_connections` a call waits up to `timeout`
seconds for a free connection instead of failing, and every other pool keyword
of the host entry (`socket_timeout` above the BZPOPMIN block) reaches it.

`group_send` sends what channels-redis sends, in two round trips instead of
four: the group's expired members dropped and the members read in one
pipeline, the members' expired messages dropped and the message added (the
same Lua script) in another. Every push is a group send; at rest each round
trip through redis-py's asyncio client cost about 0.7 ms.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool

logger = logging.getLogger(__name__)

# channels-redis 4.3's script for a group send (the count in a local).
GROUP_SEND_LUA = """
    local over_capacity = 0
    local current_time = ARGV[#ARGV - 1]
    local expiry = ARGV[#ARGV]
    for i=1,#KEYS do
        local count = redis.call('ZCOUNT', KEYS[i], '-inf', '+inf')
        if count < tonumber(ARGV[i + #KEYS]) then
            redis.call('ZADD', KEYS[i], current_time, ARGV[i])
            redis.call('EXPIRE', KEYS[i], expiry)
        else
            over_capacity = over_capacity + 1
        end
    end
    return over_capacity
"""


class BlockingPoolChannelLayer(RedisChannelLayer):
    """A RedisChannelLayer whose host entries make blocking pools."""

    def create_pool(self, index: int) -> BlockingConnectionPool:
        host: dict[str, Any] = dict(self.hosts[index])
        address = host.pop("address")
        return BlockingConnectionPool.from_url(address, **host)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Send a message to every channel of a group, in two round trips."""
        assert self.require_valid_group_name(group), "Group name not valid"
        key = self._group_key(group)
        connection = self.connection(self.consistent_hash(group))
        pipe = connection.pipeline(transaction=False)
        pipe.zremrangebyscore(key, min=0, max=int(time.time()) - self.group_expiry)
        pipe.zrange(key, 0, -1)
        _dropped, members = await pipe.execute()
        channel_names = [member.decode("utf8") for member in members]
        by_connection, messages, capacities = self._map_channel_keys_to_connection(
            channel_names, message
        )
        for index, channel_keys in by_connection.items():
            connection = self.connection(index)
            pipe = connection.pipeline(transaction=False)
            now = time.time()
            for channel_key in channel_keys:
                pipe.zremrangebyscore(
                    channel_key, min=0, max=int(now) - int(self.expiry)
                )
            pipe.eval(
                GROUP_SEND_LUA,
                len(channel_keys),
                *channel_keys,
                *[messages[channel_key] for channel_key in channel_keys],
                *[capacities[channel_key] for channel_key in channel_keys],
                now,
                self.expiry,
            )
            over_capacity = (await pipe.execute())[-1]
            if over_capacity > 0:
                logger.info(
                    "%s of %s channels over capacity in group %s",
                    over_capacity,
                    len(channel_names),
                    group,
                )
