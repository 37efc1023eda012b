"""The channel layer from synchronous code: the push loop and the group sends.

This module is the one place that calls the channel layer from synchronous
code (channels_redis#332). A send that fails is logged and dropped (False).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine
from typing import Any

from channels.layers import get_channel_layer

from observability import metrics

logger = logging.getLogger(__name__)

# Every staff member's sockets: import progress and dashboard updates.
STAFF_GROUP = "staff"
# Sockets that subscribed (the shop's): the catalogue's stock changes (public data).
CATALOGUE_GROUP = "catalogue"


def user_group(user_id: int) -> str:
    """Name the group of one user's sockets, from the server-side user id only."""
    return f"user.{int(user_id)}"


# Seconds a push may take before it is dropped (the status endpoint is the truth).
PUSH_TIMEOUT_SECONDS = 5.0
# Posted pushes waiting for the push loop, at most; past it a post is dropped
# (the channel layer is down or slow, and a worker must not pile them up).
MAX_POSTED = 10_000
Message = tuple[str, dict[str, Any]]
_loop_lock = threading.Lock()
_loop: tuple[int, asyncio.AbstractEventLoop, Poster] | None = None


def push_loop() -> asyncio.AbstractEventLoop:
    """Return this process's event loop for channel-layer calls, started once.

    `async_to_sync` per message runs each send on a fresh loop in a fresh
    thread, and channels_redis keeps a connection pool per loop: every push
    paid a thread, a loop and a Redis connection (channels_redis#332). One
    long-lived loop in a daemon thread keeps the pool. A forked child (Celery
    prefork) does not inherit the thread, so it starts its own.
    """
    return _started()[1]


def _started() -> tuple[int, asyncio.AbstractEventLoop, Poster]:
    global _loop
    with _loop_lock:
        if _loop is None or _loop[0] != os.getpid() or _loop[1].is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="channel-layer-pushes", daemon=True
            ).start()
            _loop = (os.getpid(), loop, Poster(loop))
        return _loop


class Poster:
    """Send posted pushes from the push loop, in order, batched while busy.

    A worker posts a command's pushes and goes on: it does not wait for
    Redis. What is posted while a batch is being sent goes out as the next
    batch, so several commands that finish together cost one pass of the
    loop; in a batch, the messages of one group go one after another (a
    command's `running` before its `succeeded`) and the groups at once.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.posted: list[Message] = []
        self.lock = threading.Lock()
        self.sending = False
        self.idle = threading.Event()
        self.idle.set()

    def post(self, messages: list[Message]) -> bool:
        """Queue messages for the push loop; False if dropped (too many queued)."""
        with self.lock:
            if len(self.posted) + len(messages) > MAX_POSTED:
                dropped = True
            else:
                dropped = False
                self.posted += messages
                start = not self.sending
                self.sending = True
                self.idle.clear()
        if dropped:
            logger.warning("%d pushes dropped: too many waiting", len(messages))
            for _group, message in messages:
                metrics.push_sent(message.get("type", ""), sent=False)
            return False
        if start:
            self.loop.call_soon_threadsafe(self.loop.create_task, self.send_posted())
        return True

    async def send_posted(self) -> None:
        try:
            while True:
                with self.lock:
                    batch, self.posted = self.posted, []
                    if not batch:
                        self.sending = False
                        self.idle.set()
                        return
                by_group: dict[str, list[dict[str, Any]]] = {}
                for group, message in batch:
                    by_group.setdefault(group, []).append(message)
                await asyncio.gather(
                    *(
                        _send_in_order(group, messages)
                        for group, messages in by_group.items()
                    )
                )
        except BaseException:
            # Left by an error (a send's own failures are caught below): the
            # next post starts the sending again, with what is still posted.
            with self.lock:
                self.sending = False
            raise

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every posted push was sent or dropped."""
        return self.idle.wait(timeout)


async def _send_in_order(group: str, messages: list[dict[str, Any]]) -> None:
    layer = get_channel_layer()
    for message in messages:
        try:
            if layer is None:
                raise RuntimeError("no channel layer")
            await asyncio.wait_for(
                layer.group_send(group, message), PUSH_TIMEOUT_SECONDS
            )
        except Exception:
            logger.warning("push to %s dropped", group, exc_info=True)
            metrics.push_sent(message.get("type", ""), sent=False)
        else:
            metrics.push_sent(message.get("type", ""), sent=True)


def post(messages: list[Message]) -> bool:
    """Send (group, message) pairs from the push loop without waiting for them.

    For pushes on a worker's path (a command's statuses): the caller goes on
    at once. Return False if they were dropped at once (too many waiting);
    a send that fails later is logged and counted as dropped.
    """
    if not messages:
        return True
    return _started()[2].post(messages)


def wait_posted(timeout: float = PUSH_TIMEOUT_SECONDS) -> bool:
    """Wait until this process's posted pushes were sent; False on timeout."""
    return _started()[2].wait_idle(timeout)


def run_in_push_loop(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on the push loop from synchronous code; wait for it."""
    future = asyncio.run_coroutine_threadsafe(coroutine, push_loop())
    try:
        return future.result(timeout=PUSH_TIMEOUT_SECONDS)
    except BaseException:
        future.cancel()
        raise


def send_to_group(group: str, message: dict[str, Any]) -> bool:
    """Send one message to a group of sockets; return False if it was dropped."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        run_in_push_loop(layer.group_send(group, message))
    except Exception:
        logger.warning("push to %s dropped", group, exc_info=True)
        metrics.push_sent(message.get("type", ""), sent=False)
        return False
    metrics.push_sent(message.get("type", ""), sent=True)
    return True


def send_to_user(user_id: int, message: dict[str, Any]) -> bool:
    """Send one message to a user's sockets; return False if it was dropped."""
    return send_to_group(user_group(user_id), message)


def close_user_sockets(user_id: int) -> bool:
    """Close every socket of a user, in every web process (logout, revocation)."""
    return send_to_user(user_id, {"type": "user.logout"})


def recheck_user_sockets(user_id: int) -> bool:
    """Make every socket of a user read the user's rights again (user saved)."""
    return send_to_user(user_id, {"type": "user.changed"})
