"""The command status object, as the API answers it and the WebSocket pushes it."""

from __future__ import annotations

from typing import Any

from projections.progress import is_applied

from .models import CommandRecord, CommandStatus


def status_object(
    record: CommandRecord, *, projected: bool | None = None
) -> dict[str, Any]:
    """Return the public status of a command (never its payload).

    `projected` may be given by a caller that knows it (the projected push).
    """
    return {
        "id": str(record.id),
        "type": record.type,
        "status": record.status,
        "progress": record.progress,
        "result": record.result,
        "error": record.error,
        "aggregate_id": str(record.aggregate_id) if record.aggregate_id else None,
        "position": record.position,
        "projected": is_reflected(record) if projected is None else projected,
        "created_at": _iso(record.created_at),
        "started_at": _iso(record.started_at),
        "finished_at": _iso(record.finished_at),
    }


def is_reflected(record: CommandRecord) -> bool:
    """True once every read model reflects a succeeded command's events.

    A command's events are appended in one transaction, so every projection
    that has applied the last of them (`record.position`) has applied them all.
    """
    if record.status != CommandStatus.SUCCEEDED:
        return False
    return record.position is None or is_applied(record.position)


def status_url(record: CommandRecord) -> str:
    return f"/api/commands/{record.id}/"


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")
