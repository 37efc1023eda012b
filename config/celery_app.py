"""The Celery application: configured from Django settings (CELERY_*)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_prerun

from observability import workers

# Production unless told otherwise: `make run` and the tests name their settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("cqrs_orders")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The effects relay runs as a thread of each worker that consumes `commands`.
app.steps["worker"].add("commands_app.relay:RelayStep")
# JSON logs with task ids, heartbeats for /readyz, metrics files of dead children.
workers.install()


@task_prerun.connect
def check_connections(**kwargs: Any) -> None:
    """Drop broken or expired database connections before a task, as per request.

    Celery keeps connections across tasks (CELERY_DB_REUSE_MAX); a connection
    that died meanwhile (a PostgreSQL restart) is then replaced, not used.
    """
    from django.db import close_old_connections

    close_old_connections()
