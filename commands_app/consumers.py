"""WebSocket /ws/commands/: pushes of the signed-in user's command statuses."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .push import user_group

UNAUTHENTICATED = 4401


class CommandStatusConsumer(AsyncJsonWebsocketConsumer):
    """Relay `command.status` messages from the user's own group, nothing else."""

    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def command_status(self, message: dict[str, Any]) -> None:
        await self.send_json(
            {
                "type": "command.status",
                "seq": message["seq"],
                "command": message["command"],
            }
        )
