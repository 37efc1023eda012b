"""Posted pushes: sent from the push loop without waiting, in order per group."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Any
from uuid import uuid4

import pytest
from channels.layers import get_channel_layer

from commands_app.push import layer

pytestmark = [pytest.mark.integration]


def received(channel: str, count: int) -> list[dict[str, Any]]:
    """Receive `count` messages of a channel on the push loop (the layer's pool)."""

    async def take() -> list[dict[str, Any]]:
        channel_layer = get_channel_layer()
        return [await channel_layer.receive(channel) for _ in range(count)]

    return layer.run_in_push_loop(asyncio.wait_for(take(), 10))


def test_posted_pushes_keep_their_order_per_group_and_come_in_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel_layer = get_channel_layer()
    channel = layer.run_in_push_loop(channel_layer.new_channel())
    for group in ("user.901", "user.902"):
        layer.run_in_push_loop(channel_layer.group_add(group, channel))
    # Hold the loop's first send until everything below is posted: what is
    # posted meanwhile must go as one batch, still in order per group.
    first_send = threading.Event()
    sending = threading.Event()
    sends: list[str] = []
    real_send = layer._send_in_order

    async def counted(group: str, messages: list[dict[str, Any]]) -> None:
        sends.append(group)
        sending.set()
        if not first_send.is_set():
            await asyncio.get_running_loop().run_in_executor(None, first_send.wait, 5)
        await real_send(group, messages)

    monkeypatch.setattr(layer, "_send_in_order", counted)
    assert layer.post([("user.901", {"type": "command.status", "seq": 0})])
    assert sending.wait(5)
    for seq in range(1, 21):
        group = "user.901" if seq % 2 else "user.902"
        assert layer.post([(group, {"type": "command.status", "seq": seq})])
    first_send.set()
    assert layer.wait_posted(10)

    messages = received(channel, 21)
    for group in ("user.901", "user.902"):
        layer.run_in_push_loop(channel_layer.group_discard(group, channel))
    odd = [m["seq"] for m in messages if m["seq"] % 2]
    even = [m["seq"] for m in messages if m["seq"] and not m["seq"] % 2]
    assert odd == list(range(1, 21, 2))
    assert even == list(range(2, 21, 2))
    # One send for the first post, then one per group for the twenty others.
    assert sends == ["user.901", "user.901", "user.902"]


def test_a_post_past_the_bound_is_dropped_not_queued(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(layer, "MAX_POSTED", 0)
    assert not layer.post([("user.903", {"type": "command.status", "seq": 1})])
    assert layer.wait_posted(1)


def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each round trip to Redis from now on: a command's name, or "pipeline"."""
    from redis.asyncio.client import Pipeline, Redis

    trips: list[str] = []
    real_execute, real_command = Pipeline.execute, Redis.execute_command

    async def pipeline(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        trips.append("pipeline")
        return await real_execute(self, *args, **kwargs)

    async def command(self: Redis, *args: Any, **kwargs: Any) -> Any:
        trips.append(str(args[0]))
        return await real_command(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", pipeline)
    monkeypatch.setattr(Redis, "execute_command", command)
    return trips


def test_a_group_send_reaches_every_member_in_one_round_trip_and_keeps_capacity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel_layer = get_channel_layer()
    # Plain channel names: each its own Redis key (one process's channels
    # from new_channel() share one).
    channels = [f"push-test-{uuid4().hex}" for _ in range(3)]
    for channel in channels:
        layer.run_in_push_loop(channel_layer.group_add("user.904", channel))
    layer.run_in_push_loop(channel_layer.group_send("user.900", {}))  # script loaded
    trips = round_trips(monkeypatch)
    message = {"type": "command.status", "seq": 7}
    layer.run_in_push_loop(channel_layer.group_send("user.904", message))
    monkeypatch.undo()
    # One script: the group's expired members dropped, the others read, every
    # member's expired messages dropped and the message added.
    assert trips == ["EVALSHA"]
    for channel in channels:
        assert received(channel, 1) == [message]
        layer.run_in_push_loop(channel_layer.group_discard("user.904", channel))
    # Past a channel's capacity the message is not added (channels-redis's rule).
    monkeypatch.setattr(channel_layer, "capacity", 1)
    channel = channels[0]
    layer.run_in_push_loop(channel_layer.group_add("user.905", channel))
    for seq in (1, 2):
        layer.run_in_push_loop(channel_layer.group_send("user.905", {"seq": seq}))
    assert received(channel, 1) == [{"seq": 1}]
    layer.run_in_push_loop(channel_layer.group_discard("user.905", channel))


def members_of(group: str) -> list[str]:
    channel_layer = get_channel_layer()

    async def read() -> list[str]:
        connection = channel_layer.connection(0)
        raw = await connection.zrange(channel_layer._group_key(group), 0, -1)
        return sorted(member.decode() for member in raw)

    return layer.run_in_push_loop(read())


def stored(channel_key: str) -> list[dict[str, Any]]:
    """Every message waiting under a channel key, decoded as the receiver does."""
    channel_layer = get_channel_layer()

    async def read() -> list[bytes]:
        connection = channel_layer.connection(0)
        return await connection.zrange(channel_key, 0, -1)

    return [channel_layer.deserialize(raw) for raw in layer.run_in_push_loop(read())]


async def delete(*keys: str) -> None:
    await get_channel_layer().connection(0).delete(*keys)


@pytest.mark.parametrize("keys", [3, 14, 15, 16, 40])
def test_one_trip_stores_what_channels_redis_stores(keys: int) -> None:
    from channels_redis.core import RedisChannelLayer

    channel_layer = get_channel_layer()
    # Two processes' channels (each process's share one Redis key), 17 of them
    # in one (an array of more than 15), and a plain channel: every key the
    # script derives and packs for.
    process = uuid4().hex
    many = [f"specific.{process}!{index}" for index in range(17)]
    other = f"specific.{uuid4().hex}!x"
    plain = f"push-test-{uuid4().hex}"
    channels = [*many, other, plain]
    message: dict[str, Any] = {
        "type": "command.status",
        "command": {"id": str(uuid4()), "status": "succeeded", "note": "é ✓ \\n\t"},
        "items": [1, 2.5, None, True, {"nested": ["a" * 300]}],
        **{f"extra_{index}": index for index in range(keys - 3)},
    }
    sent = {}
    for how, group in (("ours", "user.906"), ("stock", "user.907")):
        for channel in channels:
            layer.run_in_push_loop(channel_layer.group_add(group, channel))
        if how == "ours":
            send = channel_layer.group_send(group, message)
        else:
            send = RedisChannelLayer.group_send(channel_layer, group, message)
        layer.run_in_push_loop(send)
        sent[how] = {
            key: stored(key)
            for key in {
                channel_layer.prefix + channel_layer.non_local_name(c) for c in channels
            }
        }
        for channel in channels:
            layer.run_in_push_loop(channel_layer.group_discard(group, channel))
        layer.run_in_push_loop(delete(*sent[how]))
    assert sent["ours"] == sent["stock"]
    assert len(sent["ours"]) == 3
    for messages in sent["ours"].values():
        assert len(messages) == 1
        (one,) = messages
        assert {k: v for k, v in one.items() if k != "__asgi_channel__"} == message
    key_of_many = channel_layer.prefix + channel_layer.non_local_name(many[0])
    assert sorted(sent["ours"][key_of_many][0]["__asgi_channel__"]) == sorted(many)


def test_one_trip_drops_expired_members_and_messages() -> None:
    channel_layer = get_channel_layer()
    expired, live = f"push-test-{uuid4().hex}", f"push-test-{uuid4().hex}"
    group_key = channel_layer._group_key("user.908")
    live_key = channel_layer.prefix + live

    async def seed() -> None:
        connection = channel_layer.connection(0)
        await connection.zadd(group_key, {expired: 1, live: time.time()})
        # A message older than the layer's expiry, waiting on the live channel.
        await connection.zadd(live_key, {b"old": 1})

    layer.run_in_push_loop(seed())
    layer.run_in_push_loop(channel_layer.group_send("user.908", {"seq": 1}))
    assert members_of("user.908") == [live]
    assert stored(channel_layer.prefix + expired) == []
    assert received(live, 1) == [{"seq": 1}]
    layer.run_in_push_loop(channel_layer.group_discard("user.908", live))


def test_capacities_per_channel_name_take_the_two_trip_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel_layer = get_channel_layer()
    channel = f"push-test-{uuid4().hex}"
    layer.run_in_push_loop(channel_layer.group_add("user.909", channel))
    monkeypatch.setattr(
        channel_layer, "channel_capacity", [(re.compile(r"^elsewhere$"), 5)]
    )
    trips = round_trips(monkeypatch)
    layer.run_in_push_loop(channel_layer.group_send("user.909", {"seq": 2}))
    monkeypatch.undo()
    # The members read, then the message added with channels-redis's script.
    assert trips == ["pipeline", "pipeline"]
    assert received(channel, 1) == [{"seq": 2}]
    layer.run_in_push_loop(channel_layer.group_discard("user.909", channel))
