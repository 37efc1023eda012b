"""Pushes to WebSocket clients and projection wake-ups, after commits.

The channel layer is at-most-once: a push that fails is logged and dropped, and
clients resynchronise from the status endpoint. This module is the one place
that calls the channel layer from synchronous code (channels_redis#332).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine, Iterable
from typing import Any

from channels.layers import get_channel_layer
from django.db import connections

from observability import metrics, tracing

from .models import CommandRecord, CommandStatus
from .registry import spec_of

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


def push_status(record: CommandRecord, *, projected: bool | None = None) -> bool:
    """Push a command's status to its user (`projected` when already known)."""
    from .status import status_object

    status = status_object(record, projected=projected)
    with tracing.span("push.status", attributes={"command.status": record.status}):
        sent = send_to_user(
            record.user_id,
            {"type": "command.status", "seq": record.status_seq, "command": status},
        )
    if spec_of(record).progress_pushes:
        push_import_progress(record.user_id, record.status_seq, status)
    return sent


def push_import_progress(user_id: int, seq: int, status: dict[str, Any]) -> bool:
    """Tell every staff socket how far an import has got (imports are staff-only)."""
    return send_to_group(
        STAFF_GROUP,
        {
            "type": "import.progress",
            "seq": seq,
            "user_id": int(user_id),
            "command": {
                key: status[key]
                for key in ("id", "status", "progress", "result", "error")
            },
        },
    )


def push_projection_lag(projections: list[dict[str, Any]]) -> bool:
    """Send the projections' lag to staff sockets (PROJECTIONS_ON_LAG)."""
    return send_to_group(
        STAFF_GROUP, {"type": "projection.lag", "projections": projections}
    )


def push_stock(products: list[dict[str, Any]]) -> bool:
    """Send the catalogue's new stock to every shopper (PROJECTIONS_ON_STOCK).

    One message per projection round: `products` holds each changed product
    once, `[{id, available, position}]`, after the read model committed it.
    """
    if not products:
        return False
    return send_to_group(
        CATALOGUE_GROUP, {"type": "catalogue.stock", "products": products}
    )


def push_command_stats(stats: dict[str, Any]) -> bool:
    """Send recent command throughput and outcomes to staff sockets."""
    return send_to_group(STAFF_GROUP, {"type": "command.stats", **stats})


def after_commit(record: CommandRecord) -> None:
    """Push a command's final status after its commit.

    The commit itself woke the projections (the append's NOTIFY, see
    eventstore.append). The events committed an instant ago, so the status
    says not yet projected without asking the read database: a push with a
    higher sequence number follows when every read model has them
    (push_projected).
    """
    push_status(record, projected=None if record.position is None else False)


def wake_projections() -> None:
    """Wake the projector relays now (or at the commit, inside a transaction).

    Appending events already does this in its transaction; this is for code
    that wants a catch-up without appending (a pending command's resumption).
    A lost wake-up costs at most one relay poll (PROJECTIONS_POLL_SECONDS).
    """
    from . import eventstore

    try:
        with connections[eventstore.DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [eventstore.PROJECTIONS_CHANNEL])
    except Exception:
        logger.warning("projection wake-up lost", exc_info=True)


def push_projected(positions: Iterable[int]) -> None:
    """Push the status of commands whose last event every read model has applied.

    One statement bumps every sequence number; the status says `projected`
    without asking the read database again, as that is why this is called.
    """
    records = CommandRecord.objects.raw(
        "UPDATE commands SET status_seq = status_seq + 1 "
        "WHERE position = ANY(%s) AND status = %s RETURNING *",
        [list(positions), CommandStatus.SUCCEEDED],
    )
    for record in records:
        # Joins the command's trace: the projected push ends its path.
        with tracing.span("push.projected", parent=record.traceparent or None):
            push_status(record, projected=True)
