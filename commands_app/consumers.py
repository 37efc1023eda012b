"""WebSocket /ws/commands/: pushes of the signed-in user's command statuses.

Staff sockets also join the staff group, which carries import progress and the
dashboard's figures; a customer's socket never joins it, and its handlers drop
staff messages anyway should one ever be routed to it. A socket that sends
`{"type": "catalogue.subscribe"}` (the shop's) also joins the catalogue group:
the stock of products once the catalogue has applied it, public to every
signed-in user.

Limits (settings WS_*; close codes in docs/api.md): at most
WS_MAX_CONNECTIONS_PER_USER sockets per user across every web process (4429
past it), frames up to WS_MAX_FRAME_BYTES (1009 past it, unparsed). A logout
closes every socket of the user (4401); a user saved without staff rights
leaves the staff group at once, and a deactivated one is closed (4401).
"""

from __future__ import annotations

import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from observability import metrics

from . import ws_slots
from .push.layer import CATALOGUE_GROUP, STAFF_GROUP, user_group

# Not signed in, signed out since, or deactivated: sign in again.
UNAUTHENTICATED = 4401
# The user has WS_MAX_CONNECTIONS_PER_USER sockets open already.
TOO_MANY_CONNECTIONS = 4429
# A frame above WS_MAX_FRAME_BYTES (RFC 6455 "message too big").
MESSAGE_TOO_BIG = 1009


@database_sync_to_async
def user_flags(user_id: int) -> tuple[bool, bool]:
    """Return (is_active, is_staff) of a user as the database has them now."""
    from django.contrib.auth import get_user_model

    row = (
        get_user_model()
        .objects.filter(pk=user_id)
        .values_list("is_active", "is_staff")
        .first()
    )
    return (bool(row[0]), bool(row[1])) if row else (False, False)


class CommandStatusConsumer(AsyncJsonWebsocketConsumer):
    """Relay the user's own `command.status` messages, and staff messages to staff."""

    groups: list[str]
    user_id: int | None = None
    is_staff = False
    counted = False
    slot = False
    closing = False
    # When staff rights were last read from the database (time.monotonic()).
    checked_at = 0.0

    async def connect(self) -> None:
        self.groups = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        self.user_id = int(user.pk)
        if not await ws_slots.take(self.user_id, self.channel_name):
            # Accepted first: a close code reaches the client only after that.
            await self.accept()
            await self.close_with(TOO_MANY_CONNECTIONS)
            return
        self.slot = True
        self.is_staff = bool(user.is_staff)
        self.checked_at = time.monotonic()
        groups = [user_group(self.user_id)] + ([STAFF_GROUP] if self.is_staff else [])
        try:
            for group in groups:
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups.append(group)
        except BaseException:
            # No disconnect follows a failed connect: give the slot back now.
            self.slot = False
            await ws_slots.release(self.user_id, self.channel_name)
            raise
        await self.accept()
        self.counted = True
        metrics.websocket_opened()

    async def disconnect(self, code: int) -> None:
        if self.counted:
            self.counted = False
            metrics.websocket_closed()
        for group in self.groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups = []
        if self.slot and self.user_id is not None:
            self.slot = False
            await ws_slots.release(self.user_id, self.channel_name)

    async def close_with(self, code: int) -> None:
        if not self.closing:
            self.closing = True
            await self.close(code=code)

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        """Close on a frame above WS_MAX_FRAME_BYTES before decoding it."""
        limit = settings.WS_MAX_FRAME_BYTES
        text, data = message.get("text"), message.get("bytes")
        size = len(data) if data is not None else len(text or "")
        if size > limit or (text is not None and len(text.encode()) > limit):
            await self.close_with(MESSAGE_TOO_BIG)
            return
        await super().websocket_receive(message)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "catalogue.subscribe" and CATALOGUE_GROUP not in self.groups:
            await self.channel_layer.group_add(CATALOGUE_GROUP, self.channel_name)
            self.groups.append(CATALOGUE_GROUP)

    async def command_status(self, message: dict[str, Any]) -> None:
        if self.closing:
            return
        await self.send_json(
            {
                "type": "command.status",
                "seq": message["seq"],
                "command": message["command"],
            }
        )

    async def catalogue_stock(self, message: dict[str, Any]) -> None:
        await self.send_json(
            {"type": "catalogue.stock", "products": message["products"]}
        )

    async def user_logout(self, message: dict[str, Any]) -> None:
        """The user signed out (or their tokens were revoked): close every socket."""
        await self.close_with(UNAUTHENTICATED)

    async def user_changed(self, message: dict[str, Any]) -> None:
        """The user was saved: read their rights again."""
        await self.recheck()

    async def recheck(self) -> None:
        """Close if the user is no longer active; follow a change of staff rights."""
        if self.user_id is None or self.closing:
            return
        active, staff = await user_flags(self.user_id)
        self.checked_at = time.monotonic()
        if not active:
            await self.close_with(UNAUTHENTICATED)
            return
        if self.is_staff and not staff:
            self.is_staff = False
            if STAFF_GROUP in self.groups:
                self.groups.remove(STAFF_GROUP)
                await self.channel_layer.group_discard(STAFF_GROUP, self.channel_name)
        elif staff and not self.is_staff:
            self.is_staff = True
            await self.channel_layer.group_add(STAFF_GROUP, self.channel_name)
            self.groups.append(STAFF_GROUP)

    async def import_progress(self, message: dict[str, Any]) -> None:
        await self.send_staff(message, ("seq", "user_id", "command"))

    async def projection_lag(self, message: dict[str, Any]) -> None:
        await self.send_staff(message, ("projections",))

    async def command_stats(self, message: dict[str, Any]) -> None:
        await self.send_staff(message, ("window_minutes", "minutes"))

    async def send_staff(self, message: dict[str, Any], keys: tuple[str, ...]) -> None:
        """Send a staff message, reading staff rights again when they are old.

        The save signal normally tells the socket at once; this also covers a
        change that sent none (a queryset update, a missed push).
        """
        if not self.is_staff or self.closing:
            return
        if time.monotonic() - self.checked_at > settings.WS_STAFF_RECHECK_SECONDS:
            await self.recheck()
        if self.is_staff and not self.closing:
            await self.send_json(
                {"type": message["type"], **{key: message[key] for key in keys}}
            )
