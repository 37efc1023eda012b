"""Pushes to WebSocket clients and projection wake-ups, after commits.

The channel layer is at-most-once: a push that fails is logged and dropped, and
clients resynchronise from the status endpoint. This module is the one place
that calls the channel layer from synchronous code (channels_redis#332).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import Any

import redis
from asgiref.sync import async_to_sync
from celery import current_app
from channels.layers import get_channel_layer
from django.conf import settings

from .models import CommandRecord, CommandStatus

logger = logging.getLogger(__name__)

WAKE_KEY = "projections:wake-queued"


def user_group(user_id: int) -> str:
    """Name the group of one user's sockets, from the server-side user id only."""
    return f"user.{int(user_id)}"


def send_to_user(user_id: int, message: dict[str, Any]) -> bool:
    """Send one message to a user's sockets; return False if it was dropped."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        async_to_sync(layer.group_send)(user_group(user_id), message)
    except Exception:
        logger.warning("push to user %s dropped", user_id, exc_info=True)
        return False
    return True


def push_status(record: CommandRecord) -> bool:
    from .status import status_object

    return send_to_user(
        record.user_id,
        {
            "type": "command.status",
            "seq": record.status_seq,
            "command": status_object(record),
        },
    )


def after_commit(record: CommandRecord) -> None:
    """Push a final status and wake the projections when events were appended."""
    push_status(record)
    if record.position is not None:
        wake_projections()


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
    )


def wake_projections() -> None:
    """Enqueue one catch-up task unless one is already queued (coalesced)."""
    try:
        if _redis().set(WAKE_KEY, 1, nx=True, ex=30):
            current_app.send_task("projections.catch_up", queue="projections")
    except Exception:
        # The beat safety net catches up within seconds.
        logger.warning("projection wake-up lost", exc_info=True)


def push_projected(positions: Iterable[int]) -> None:
    """Push the status of commands whose last event every read model has applied."""
    records = CommandRecord.objects.filter(
        position__in=list(positions), status=CommandStatus.SUCCEEDED
    )
    for record in records:
        record.status_seq += 1
        CommandRecord.objects.filter(pk=record.pk).update(status_seq=record.status_seq)
        push_status(record)
