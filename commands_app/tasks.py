"""Celery tasks: thin shells over plain functions, safe to deliver twice."""

from __future__ import annotations

from uuid import UUID

from celery import shared_task

from . import dashboard, execution, retention, sweeper


@shared_task(name="commands.execute", acks_late=True, ignore_result=True)
def execute_task(command_id: str) -> None:
    """Run one accepted command; safe to deliver twice.

    Then, with the takeover on, the commands still pending for a while
    (execution.execute_then_pending).
    """
    execution.execute_then_pending([UUID(command_id)])


@shared_task(name="commands.execute_many", acks_late=True, ignore_result=True)
def execute_many_task(command_ids: list[str]) -> None:
    """Run several accepted commands, one after another; safe to deliver twice.

    The command relay publishes one of these per chunk of a busy moment's
    commands, so that Celery's receive, acknowledgement and log lines are paid
    per chunk. A command's failure does not stop the others: each claims,
    decides and finishes on its own (execution.execute_all). Then, with
    the takeover on, it runs the commands still pending for a while
    (execution.execute_then_pending). Safe to deliver twice.
    """
    execution.execute_then_pending([UUID(command_id) for command_id in command_ids])


@shared_task(
    name="commands.execute_import",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=3000,
    time_limit=3300,
)
def execute_import_task(command_id: str) -> None:
    """Run (or resume) one import-products command."""
    execution.execute(UUID(command_id))


@shared_task(name="commands.sweep", ignore_result=True)
def sweep_task() -> None:
    """Re-drive commands whose task was lost or whose worker died."""
    sweeper.sweep()


@shared_task(name="commands.dashboard", ignore_result=True)
def dashboard_task() -> None:
    """Push command statistics to staff dashboards."""
    dashboard.push_dashboard()


@shared_task(name="commands.purge_finished", ignore_result=True)
def purge_finished_task() -> None:
    """Delete command records past their retention (and idempotency) time."""
    retention.purge_finished_commands()
