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
_loop_lock = threading.Lock()
_loop: tuple[int, asyncio.AbstractEventLoop] | None = None


def push_loop() -> asyncio.AbstractEventLoop:
    """Return this process's event loop for channel-layer calls, started once.

    `async_to_sync` per message runs each send on a fresh loop in a fresh
    thread, and channels_redis keeps a connection pool per loop: every push
    paid a thread, a loop and a Redis connection (channels_redis#332). One
    long-lived loop in a daemon thread keeps the pool. A forked child (Celery
    prefork) does not inherit the thread, so it starts its own.
    """
    global _loop
    with _loop_lock:
        if _loop is None or _loop[0] != os.getpid() or _loop[1].is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="channel-layer-pushes", daemon=True
            ).start()
            _loop = (os.getpid(), loop)
        return _loop[1]


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
