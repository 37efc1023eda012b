"""The channel layer on a bounded, blocking Redis connection pool.

channels-redis builds each host's pool with `ConnectionPool.from_url`, whose
redis-py 8 defaults are 100 connections, raising `MaxConnectionsError` past
them, and a 5 s socket timeout, the very time its BZPOPMIN blocks for. A burst
of sockets connecting at once (after a deploy) then failed in `group_add`, and
the receive loop's BZPOPMIN raced the read timeout. Here the pool is a
`BlockingConnectionPool`: past `max_connections` a call waits up to `timeout`
seconds for a free connection instead of failing, and every other pool keyword
of the host entry (`socket_timeout` above the BZPOPMIN block) reaches it.

`group_send` sends what channels-redis sends, in one round trip instead of
four: one script drops the group's expired members, reads the others, and
gives each of their Redis keys the message with that key's channels in
`__asgi_channel__`, packed as channels-redis packs it (the random prefix, then
msgpack), under channels-redis's capacity and expiry rules. Every push is a
group send; at rest each round trip through redis-py's asyncio client cost
about 0.7 ms, and 111 µs of CPU for a bare PING (docs/performance.md). Where
the script cannot build the message (several hosts, which hash a group's
channels over servers; encrypted messages; capacities per channel name; a map
of more than 65,534 keys) it takes two: the members read in one pipeline, the
message added with channels-redis's own script in another.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from channels_redis.core import RedisChannelLayer
from channels_redis.serializers import MsgPackSerializer
from redis.asyncio import BlockingConnectionPool
from redis.commands.core import AsyncScript

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


# The whole group send in one script. The message comes packed without
# `__asgi_channel__`: its random prefix (ARGV[2]), its map's header counting one
# more entry (ARGV[3]) and its entries (ARGV[4]); the script appends the entry
# `__asgi_channel__` -> [the key's channels], msgpack's str and array formats.
# The channels' keys are derived as channels-redis derives them (the prefix,
# then the name up to and including its "!"), so the script names keys it
# was not given: fine on one Redis server, which is the only case it serves.
GROUP_SEND_ONE_TRIP_LUA = """
local function str(s)
    local n = #s
    if n < 32 then return string.char(0xa0 + n) .. s end
    if n < 256 then return string.char(0xd9, n) .. s end
    return string.char(0xda, math.floor(n / 256), n % 256) .. s
end
local function array(items)
    local n = #items
    local packed = {}
    if n < 16 then
        packed[1] = string.char(0x90 + n)
    else
        packed[1] = string.char(0xdc, math.floor(n / 256), n % 256)
    end
    for i = 1, n do packed[#packed + 1] = str(items[i]) end
    return table.concat(packed)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local keys, channels = {}, {}
for _, channel in ipairs(members) do
    local bang = string.find(channel, '!', 1, true)
    local key = ARGV[5] .. (bang and string.sub(channel, 1, bang) or channel)
    if channels[key] == nil then
        channels[key] = {}
        keys[#keys + 1] = key
    end
    table.insert(channels[key], channel)
end
local over_capacity = 0
for _, key in ipairs(keys) do
    redis.call('ZREMRANGEBYSCORE', key, 0, ARGV[7])
    if redis.call('ZCOUNT', key, '-inf', '+inf') < tonumber(ARGV[6]) then
        local message = ARGV[2] .. ARGV[3] .. ARGV[4]
            .. str('__asgi_channel__') .. array(channels[key])
        redis.call('ZADD', key, ARGV[8], message)
        redis.call('EXPIRE', key, ARGV[9])
    else
        over_capacity = over_capacity + 1
    end
end
return {over_capacity, #members}
"""


# Run by its SHA (EVALSHA) on the client it is given; redis-py loads it again
# when Redis has forgotten it.
GROUP_SEND_ONE_TRIP = AsyncScript(
    None,  # type: ignore[arg-type]
    GROUP_SEND_ONE_TRIP_LUA.encode(),
)


def map_with_one_more_entry(packed: bytes) -> tuple[bytes, bytes] | None:
    """Split a msgpack map into a header counting one more entry, and its entries.

    None for what is not a map of at most 65,534 entries (fixmap or map16).
    """
    first = packed[0]
    if 0x80 <= first < 0x8F:
        return bytes([first + 1]), packed[1:]
    if first == 0x8F:
        return b"\xde\x00\x10", packed[1:]
    if first == 0xDE and packed[1:3] != b"\xff\xff":
        count = int.from_bytes(packed[1:3], "big") + 1
        return b"\xde" + count.to_bytes(2, "big"), packed[3:]
    return None


def log_over_capacity(over_capacity: int, members: int, group: str) -> None:
    """Say, as channels-redis says it, how many of a group's channels were full."""
    if over_capacity > 0:
        logger.info(
            "%s of %s channels over capacity in group %s",
            over_capacity,
            members,
            group,
        )


class BlockingPoolChannelLayer(RedisChannelLayer):
    """A RedisChannelLayer whose host entries make blocking pools."""

    def create_pool(self, index: int) -> BlockingConnectionPool:
        host: dict[str, Any] = dict(self.hosts[index])
        address = host.pop("address")
        return BlockingConnectionPool.from_url(address, **host)

    def one_trip_packing(self, message: dict[str, Any]) -> tuple[bytes, ...] | None:
        """Return the message's prefix, map header and entries for the script.

        None where the script cannot build the message: several hosts, encrypted
        messages, capacities per channel name, or a message the script's packing
        does not extend.
        """
        serializer = self._serializer
        if (
            self.ring_size != 1
            or self.channel_capacity
            or not isinstance(serializer, MsgPackSerializer)
            or serializer.crypter is not None
            or "__asgi_channel__" in message
        ):
            return None
        packed = self.serialize(message)
        length = serializer.random_prefix_length
        split = map_with_one_more_entry(packed[length:])
        if split is None:
            return None
        return (packed[:length], *split)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Send a message to every channel of a group, in one round trip."""
        assert self.require_valid_group_name(group), "Group name not valid"
        packing = self.one_trip_packing(message)
        if packing is None:
            await self.group_send_in_two_trips(group, message)
            return
        connection = self.connection(0)
        now = time.time()
        over_capacity, members = await GROUP_SEND_ONE_TRIP(
            keys=[self._group_key(group)],
            args=[
                int(now) - self.group_expiry,
                *packing,
                self.prefix,
                self.capacity,
                int(now) - int(self.expiry),
                now,
                self.expiry,
            ],
            client=connection,
        )
        log_over_capacity(over_capacity, members, group)

    async def group_send_in_two_trips(
        self, group: str, message: dict[str, Any]
    ) -> None:
        """Send a message to every channel of a group, in two round trips."""
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
            log_over_capacity(over_capacity, len(channel_names), group)
