"""A command's status pushes: the final status, `projected`, import progress.

Each push carries the record's `status_seq`, so that a client keeps the newest
of what it heard; the status endpoint is the truth when a push is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from observability import tracing

from ..models import CommandRecord
from ..registry import spec_of
from ..status import status_object
from .layer import STAFF_GROUP, Message, post, user_group


def push_status(record: CommandRecord, *, projected: bool | None = None) -> bool:
    """Push a command's status to its user (`projected` when already known).

    Posted, not waited for (`layer.post`): the worker goes on at once.
    """
    with tracing.span("push.status", attributes={"command.status": record.status}):
        return post(status_messages(record, projected=projected))


def status_messages(
    record: CommandRecord, *, projected: bool | None = None
) -> list[Message]:
    """Return the (group, message) pairs that tell a command's status."""
    status = status_object(record, projected=projected)
    messages: list[Message] = [
        (
            user_group(record.user_id),
            {"type": "command.status", "seq": record.status_seq, "command": status},
        )
    ]
    if spec_of(record).progress_pushes:
        messages.append(import_progress(record.user_id, record.status_seq, status))
    return messages


def import_progress(user_id: int, seq: int, status: dict[str, Any]) -> Message:
    """Return the message that tells every staff socket how far an import has got."""
    return (
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


def after_commit(record: CommandRecord) -> None:
    """Push a command's final status after its commit.

    The commit itself woke the projections (the append's NOTIFY, see
    eventstore.append). The events committed an instant ago, so the status
    says not yet projected without asking the read database: a push with a
    higher sequence number follows when every read model has them
    (push_projected).
    """
    push_status(record, projected=None if record.position is None else False)


def push_projected(positions: Iterable[int]) -> None:
    """Push the status of commands whose last event every read model has applied.

    One statement bumps every sequence number (execution.mark_projected); the
    status says `projected` without asking the read database again, as that is
    why this is called. The pushes of a round's commands go as one batch.
    """
    from ..execution import mark_projected  # execution pushes: import when called

    messages: list[Message] = []
    for record in mark_projected(positions):
        # Joins the command's trace: the projected push ends its path.
        with tracing.span("push.projected", parent=record.traceparent or None):
            messages += status_messages(record, projected=True)
    post(messages)


def on_projected(sender: Any, *, positions: list[int], **kwargs: Any) -> None:
    """Receive `projections.signals.projected` (connected in apps.ready)."""
    push_projected(positions)
