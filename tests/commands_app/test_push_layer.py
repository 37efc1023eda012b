"""Posted pushes: sent from the push loop without waiting, in order per group."""

from __future__ import annotations

import asyncio
import threading
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


def test_a_group_send_reaches_every_member_in_two_round_trips_and_keeps_capacity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from redis.asyncio.client import Pipeline

    channel_layer = get_channel_layer()
    # Plain channel names: each its own Redis key (one process's channels
    # from new_channel() share one).
    channels = [f"push-test-{uuid4().hex}" for _ in range(3)]
    for channel in channels:
        layer.run_in_push_loop(channel_layer.group_add("user.904", channel))
    executed: list[int] = []
    real_execute = Pipeline.execute

    async def counted(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        executed.append(len(self.command_stack))
        return await real_execute(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", counted)
    message = {"type": "command.status", "seq": 7}
    layer.run_in_push_loop(channel_layer.group_send("user.904", message))
    monkeypatch.undo()
    # The group's members (expired dropped, then read), then every member's
    # expired messages dropped and the message added.
    assert executed == [2, 4]
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
