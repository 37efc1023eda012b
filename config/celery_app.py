"""The Celery application: configured from Django settings (CELERY_*)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import (
    setup_logging,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_ready,
)

from config.startup import freeze_startup_objects
from observability import workers

# Production unless told otherwise: `make run` and the tests name their settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("cqrs_orders")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Relays run as threads of the workers (commands_app/relay.py): the effects and
# the publishing of accepted commands in each worker that consumes `commands`,
# the projector in each worker that consumes `projections`.
app.steps["worker"].add("commands_app.relay:RelayStep")
app.steps["worker"].add("commands_app.relay:CommandsRelayStep")
app.steps["worker"].add("projections.tasks:ProjectorRelayStep")
# JSON logs with task ids, heartbeats for /readyz, metrics files of dead children.
workers.install()


@setup_logging.connect
def quiet_task_lines(loglevel: Any = None, **kwargs: Any) -> None:
    """Keep Celery's per-task lines (received, succeeded) for --loglevel DEBUG.

    Each command logs one structured line of its own (commands_app/execution.py);
    Celery's two per task are the same facts, formatted and written in the
    worker's main process. Failures (ERROR) are logged at every level.
    """
    import logging

    level = logging.getLevelName(loglevel) if isinstance(loglevel, str) else loglevel
    if isinstance(level, int) and level > logging.DEBUG:
        for name in ("celery.app.trace", "celery.worker.strategy"):
            logging.getLogger(name).setLevel(logging.WARNING)


@worker_process_init.connect
@worker_ready.connect
def freeze_worker_objects(**kwargs: Any) -> None:
    """Freeze what a pool process (after its fork) or the main process made.

    The main process is ready once its consumer and relays run; a prefork
    child once forked, with the main process's modules (config/startup.py).
    """
    freeze_startup_objects()


@task_prerun.connect
def check_connections(**kwargs: Any) -> None:
    """Drop broken or expired database connections before a task, as per request.

    Celery keeps connections across tasks (CELERY_DB_REUSE_MAX); a connection
    that died meanwhile (a PostgreSQL restart) is then replaced, not used.
    """
    from django.db import close_old_connections

    close_old_connections()


# --- RabbitMQ only -------------------------------------------------------------------


@worker_init.connect
def declare_every_queue(sender: Any = None, **kwargs: Any) -> None:
    """On RabbitMQ, declare all the app's queues, not only those this worker consumes.

    Celery binds every queue of the app to its delayed-delivery exchanges when a
    worker starts on quorum queues, and logs a failure for each queue whose
    exchange nobody declared yet (a commands-only worker on a new virtual host).
    Declaring them all first also lets queue-depth metrics find each queue.
    """
    from django.conf import settings

    if not settings.BROKER_IS_RABBITMQ:
        return
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=3)
            channel = connection.default_channel
            for queue in app.amqp.queues.values():
                queue(channel).declare()
    except Exception as exc:  # the worker retries its own connection anyway
        import logging

        logging.getLogger(__name__).warning("declaring the queues failed: %r", exc)
