"""The Celery application: configured from Django settings (CELERY_*)."""

from __future__ import annotations

import os

from celery import Celery

from observability import workers

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("cqrs_orders")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# JSON logs with task ids, heartbeats for /readyz, metrics files of dead children.
workers.install()
