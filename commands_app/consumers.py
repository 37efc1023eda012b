"""WebSocket /ws/commands/: pushes of the signed-in user's command statuses.

Staff sockets also join the staff group, which carries import progress and the
dashboard's figures; a customer's socket never joins it, and its handlers drop
staff messages anyway should one ever be routed to it. A socket that sends
`{"type": "catalogue.subscribe"}` (the shop's) also joins the catalogue group:
the stock of products once the catalogue has applied it, public to every
signed-in user.
"""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from observability import metrics

from .push import CATALOGUE_GROUP, STAFF_GROUP, user_group

UNAUTHENTICATED = 4401


class CommandStatusConsumer(AsyncJsonWebsocketConsumer):
    """Relay the user's own `command.status` messages, and staff messages to staff."""

    groups: list[str]
    is_staff = False
    counted = False

    async def connect(self) -> None:
        self.groups = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        self.is_staff = bool(user.is_staff)
        groups = [user_group(user.pk)] + ([STAFF_GROUP] if self.is_staff else [])
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups.append(group)
        await self.accept()
        self.counted = True
        metrics.websocket_opened()

    async def disconnect(self, code: int) -> None:
        if self.counted:
            self.counted = False
            metrics.websocket_closed()
        for group in self.groups:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "catalogue.subscribe" and CATALOGUE_GROUP not in self.groups:
            await self.channel_layer.group_add(CATALOGUE_GROUP, self.channel_name)
            self.groups.append(CATALOGUE_GROUP)

    async def command_status(self, message: dict[str, Any]) -> None:
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

    async def import_progress(self, message: dict[str, Any]) -> None:
        await self.send_staff(message, ("seq", "user_id", "command"))

    async def projection_lag(self, message: dict[str, Any]) -> None:
        await self.send_staff(message, ("projections",))

    async def command_stats(self, message: dict[str, Any]) -> None:
        await self.send_staff(message, ("window_minutes", "minutes"))

    async def send_staff(self, message: dict[str, Any], keys: tuple[str, ...]) -> None:
        if self.is_staff:
            await self.send_json(
                {"type": message["type"], **{key: message[key] for key in keys}}
            )
