"""Celery tasks: thin shells over plain functions, safe to deliver twice."""

from __future__ import annotations

from uuid import UUID

from celery import shared_task

from . import dashboard, execution, retention, sweeper


@shared_task(name="commands.execute", acks_late=True, ignore_result=True)
def execute_task(command_id: str) -> None:
    """Run one accepted command; safe to deliver twice."""
    execution.execute(UUID(command_id))


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
