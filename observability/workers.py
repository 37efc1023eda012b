"""Celery hooks: JSON logs, task ids in log lines, heartbeats, metrics files.

`install()` is called once by the Celery app (config/celery_app.py).
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

from celery import signals

from . import context, heartbeat, metrics

logger = logging.getLogger(__name__)

_heartbeat: heartbeat.Heartbeat | None = None


def install() -> None:
    """Connect the receivers (weakly held by Celery, so kept module-level)."""
    signals.setup_logging.connect(setup_logging, weak=False)
    signals.task_prerun.connect(task_prerun, weak=False)
    signals.task_postrun.connect(task_postrun, weak=False)
    signals.worker_ready.connect(worker_ready, weak=False)
    signals.worker_shutdown.connect(worker_shutdown, weak=False)
    signals.worker_process_shutdown.connect(worker_process_shutdown, weak=False)


def setup_logging(**kwargs: Any) -> None:
    """Use settings.LOGGING (JSON, ids, masking) instead of Celery's own format."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


def task_prerun(task_id: str | None = None, **kwargs: Any) -> None:
    context.bind(task_id=task_id, command_id=None, correlation_id=None)


def task_postrun(**kwargs: Any) -> None:
    context.bind(task_id=None, command_id=None, correlation_id=None)


def consumed_queues(consumer: Any) -> list[str]:
    try:
        return sorted(consumer.app.amqp.queues.consume_from)
    except Exception:
        return sorted(queue.name for queue in consumer.task_consumer.queues)


def worker_ready(sender: Any = None, **kwargs: Any) -> None:
    """Start the heartbeat and, if configured, this container's metrics port."""
    global _heartbeat
    from django.conf import settings

    queues = consumed_queues(sender)
    _heartbeat = heartbeat.Heartbeat(
        settings.REDIS_URL,
        sender.hostname,
        queues,
        settings.WORKER_HEARTBEAT_SECONDS,
    ).start()
    if settings.WORKER_METRICS_PORT:
        metrics.start_exporter(settings.WORKER_METRICS_PORT)
    logger.info("heartbeat started for queues %s", ",".join(queues))


def worker_shutdown(**kwargs: Any) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()


def worker_process_shutdown(pid: int | None = None, **kwargs: Any) -> None:
    metrics.mark_process_dead(pid)
