"""Rebuilds and verifications from the admin: queued, long, with their progress.

They run on the `maintenance` queue (consumed by the commands worker, see the
Makefile), not on `projections`, so that catch-up goes on meanwhile, and with
time limits of their own: a rebuild of a large store runs far beyond the 300 s
of ordinary tasks. The task is acknowledged on receipt, not on completion: a
redelivery after the broker's visibility timeout would start a second rebuild
of the same shadow tables; a rebuild lost with its worker is queued again by
the operator (its status then stops moving, and its lock expires).

Each projection's last job is kept in the cache (`job_status`) and shown in
the checkpoint admin: kind, state, events replayed of the target, and a
verification's checksums.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from commands_app.eventstore import Position

from . import rebuild

logger = logging.getLogger(__name__)

QUEUE = "maintenance"
# Hard limit of one rebuild or verification; the soft one lets it clean up.
TIME_LIMIT_SECONDS = 6 * 3600
SOFT_TIME_LIMIT_SECONDS = TIME_LIMIT_SECONDS - 300
# A job whose status has not moved for this long is taken for lost.
STALE_SECONDS = 15 * 60
STATUS_SECONDS = 7 * 24 * 3600
KINDS = ("rebuild", "verify")


def _status_key(name: str) -> str:
    return f"projections:maintenance:{name}"


def _lock_key(name: str) -> str:
    return f"projections:maintenance-lock:{name}"


def job_status(name: str) -> dict[str, Any] | None:
    """Return the last rebuild or verification of a projection, if any."""
    status: dict[str, Any] | None = cache.get(_status_key(name))
    return status


def _save(name: str, **fields: Any) -> None:
    status = {**(job_status(name) or {}), **fields, "updated_at": _now()}
    cache.set(_status_key(name), status, STATUS_SECONDS)


def _now() -> str:
    return timezone.now().isoformat()


def queue_job(kind: str, name: str) -> bool:
    """Queue a rebuild or verification of one projection; False if one is on."""
    from .tasks import rebuild_task, verify_task

    assert kind in KINDS, kind
    if not cache.add(_lock_key(name), kind, STALE_SECONDS):
        return False
    cache.set(
        _status_key(name),
        {"kind": kind, "state": "queued", "queued_at": _now(), "updated_at": _now()},
        STATUS_SECONDS,
    )
    task = rebuild_task if kind == "rebuild" else verify_task
    task.apply_async(
        (name,),
        queue=QUEUE,
        soft_time_limit=SOFT_TIME_LIMIT_SECONDS,
        time_limit=TIME_LIMIT_SECONDS,
    )
    return True


def _progress(name: str) -> rebuild.Progress:
    def report(done: Position, target: Position) -> None:
        _save(name, done=done.position, target=target.position)
        cache.touch(_lock_key(name), STALE_SECONDS)

    return report


def run_rebuild(name: str) -> None:
    """Rebuild one projection aside and swap it in, recording its progress."""
    _run(name, "rebuild")


def run_verify(name: str) -> None:
    """Verify one projection against a replay aside, recording the checksums."""
    _run(name, "verify")


def _run(name: str, kind: str) -> None:
    _save(name, kind=kind, state="running", started_at=_now(), error="")
    try:
        outcome = _perform(name, kind)
    except BaseException as exc:
        # Also the soft time limit: say so in the admin, then let Celery know.
        logger.exception("%s of %s failed", kind, name)
        cache.delete(_lock_key(name))
        _save(name, state="failed", finished_at=_now(), error=repr(exc)[:500])
        raise
    # Unlocked before it says so: once "done" shows, the next job is accepted.
    cache.delete(_lock_key(name))
    _save(name, state="done", finished_at=_now(), **outcome)


def _perform(name: str, kind: str) -> dict[str, Any]:
    if kind == "rebuild":
        rebuild.rebuild(name, progress=_progress(name))
        return {}
    result = rebuild.verify(name, progress=_progress(name))
    return {"equal": result.equal, "live": result.live, "rebuilt": result.rebuilt}


def describe(status: dict[str, Any] | None) -> str:
    """Say in one line how the last job went (the checkpoint list's column)."""
    if not status:
        return ""
    kind, state = status.get("kind", "?"), status.get("state", "?")
    text = f"{kind} {state}"
    if state == "running" and status.get("target"):
        share = min(1.0, status.get("done", 0) / max(1, status["target"]))
        text += f" {share:.0%} (position {status.get('done', 0)}/{status['target']})"
    if kind == "verify" and state == "done":
        text += ": equal" if status.get("equal") else ": DIFFERENT"
    if state == "failed":
        text += f": {status.get('error', '')}"
    return text
