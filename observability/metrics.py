"""Prometheus metrics: definitions, the hot-path helpers and the scrape.

Counters, histograms and the WebSocket gauge are updated in the process where
things happen (web, Celery prefork children). With PROMETHEUS_MULTIPROC_DIR
set, every process writes its values to files in that directory and a scrape
adds them up (prometheus-client's multiprocess mode), so one `/metrics` shows
the whole host: every process that writes there must share one PID namespace
(one host or one container), and the directory must be emptied before they
start. Without it, `/metrics` shows the serving process only.

Gauges read from PostgreSQL and Redis (projection lag, dead letters, queue
depth) are computed at scrape time by collectors passed to `render()`.
"""

from __future__ import annotations

import collections
import glob
import ipaddress
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    1800.0,
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def ensure_multiprocess_dir() -> None:
    """Create the multiprocess directory if it is configured and missing."""
    path = multiprocess_dir()
    if path:
        os.makedirs(path, exist_ok=True)


# The values of an unlabelled metric are created with it, so the directory must
# exist before the first definition below.
ensure_multiprocess_dir()

COMMANDS = Counter(
    "cqrs_commands_total",
    "Commands by type and outcome: accepted, succeeded, rejected, failed.",
    ["type", "status"],
)
COMMAND_LATENCY = Histogram(
    "cqrs_command_latency_seconds",
    "Time from a command's acceptance to its final status.",
    ["type", "status"],
    buckets=DURATION_BUCKETS,
)
COMMAND_RUN = Histogram(
    "cqrs_command_run_seconds",
    "Time from a worker's first claim of a command to its final status.",
    ["type", "status"],
    buckets=DURATION_BUCKETS,
)
EVENTS_APPENDED = Counter(
    "cqrs_events_appended_total", "Events committed to the event store.", ["type"]
)
PROJECTED_EVENTS = Counter(
    "cqrs_projection_events_read_total",
    "Events a projection's runner has read and moved its checkpoint past.",
    ["projection"],
)
SWEEPER_REDRIVES = Counter(
    "cqrs_sweeper_redrives_total",
    "Commands the sweeper re-enqueued (task lost, or lease ran out).",
)
WEBSOCKETS = Gauge(
    "cqrs_websocket_connections",
    "Open WebSocket connections (live web processes only).",
    multiprocess_mode="livesum",
)
EFFECTS = Counter(
    "cqrs_effects_delivered_total",
    "Effect delivery attempts by kind and outcome: done, failed, parked, fenced.",
    ["kind", "outcome"],
)
PUSHES = Counter(
    "cqrs_pushes_total",
    "Pushes to the channel layer by message type, sent or dropped.",
    ["type", "outcome"],
)


# --- Hot-path helpers: one increment each, never a query -----------------------


def command_accepted(command_type: str) -> None:
    COMMANDS.labels(command_type, "accepted").inc()


def command_finished(
    command_type: str,
    status: str,
    *,
    created_at: datetime | None,
    started_at: datetime | None,
    finished_at: datetime | None,
) -> None:
    """Count a final status and observe how long it took since accept and start."""
    COMMANDS.labels(command_type, status).inc()
    if finished_at is None:
        return
    if isinstance(created_at, datetime):
        latency = (finished_at - created_at).total_seconds()
        COMMAND_LATENCY.labels(command_type, status).observe(max(latency, 0.0))
    if isinstance(started_at, datetime):
        run = (finished_at - started_at).total_seconds()
        COMMAND_RUN.labels(command_type, status).observe(max(run, 0.0))


def events_appended(types: Iterable[str]) -> None:
    # One increment per type: each is a locked write to a shared file.
    for type_name, count in collections.Counter(types).items():
        EVENTS_APPENDED.labels(type_name).inc(count)


def projection_read(projection: str, count: int) -> None:
    if count:
        PROJECTED_EVENTS.labels(projection).inc(count)


def sweeper_redrove(count: int) -> None:
    if count:
        SWEEPER_REDRIVES.inc(count)


def effect_delivered(kind: str, outcome: str) -> None:
    EFFECTS.labels(kind, outcome).inc()


def websocket_opened() -> None:
    WEBSOCKETS.inc()


def websocket_closed() -> None:
    WEBSOCKETS.dec()


def push_sent(message_type: str, *, sent: bool) -> None:
    PUSHES.labels(message_type, "sent" if sent else "dropped").inc()


def mark_process_dead(pid: int | None = None) -> None:
    """Drop an exiting process's live gauges (its counters stay counted)."""
    path = multiprocess_dir()
    if path and os.path.isdir(path):
        multiprocess.mark_process_dead(pid or os.getpid(), path)


def prune_dead_processes(path: str) -> None:
    """Drop the live gauges of processes that no longer run.

    Neither atexit nor multiprocessing finalizers run in every server's worker
    processes (uvicorn's do not), and a killed process runs nothing; so the
    scrape checks the PIDs itself. The multiprocess directory is shared by one
    PID namespace only, which makes the check valid.
    """
    for file in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid = int(file.rsplit("_", 1)[1].removesuffix(".db"))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, path)
        except PermissionError:  # alive, another user's
            continue


# --- Scrape ----------------------------------------------------------------------


class Collector(Protocol):
    def collect(self) -> Iterable[Metric]: ...


def is_rabbitmq(broker_url: str) -> bool:
    return broker_url.startswith(("amqp://", "amqps://", "pyamqp://"))


def queue_depths(broker_url: str, queues: Sequence[str]) -> list[int]:
    """Return the tasks waiting in each Celery queue, on either broker.

    Redis: the length of the queue's list (LLEN). RabbitMQ: the message count a
    passive queue declare returns (ready messages, not those delivered and
    unacknowledged); a queue not declared yet counts 0. Neither needs more than
    the broker URL the workers use (no management plugin). One connection of
    its own, closed before returning.
    """
    if is_rabbitmq(broker_url):
        return _rabbitmq_depths(broker_url, queues)
    return _redis_depths(broker_url, queues)


def _redis_depths(broker_url: str, queues: Sequence[str]) -> list[int]:
    import redis

    client = redis.Redis.from_url(
        broker_url, socket_timeout=1, socket_connect_timeout=1
    )
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.llen(queue)
            return [int(depth) for depth in pipe.execute()]
    finally:
        client.close()


def _rabbitmq_depths(broker_url: str, queues: Sequence[str]) -> list[int]:
    from kombu import Connection

    depths = []
    with Connection(broker_url, connect_timeout=1) as connection:
        connection.ensure_connection(max_retries=1)
        channel = connection.channel()
        for queue in queues:
            try:
                _, count, _ = channel.queue_declare(queue, passive=True)
            except connection.channel_errors:
                count = 0  # 404: never declared; the error closed the channel
                channel = connection.channel()
            depths.append(int(count))
    return depths


class QueueDepthCollector:
    """Report the tasks waiting in each Celery queue (`queue_depths`)."""

    def __init__(self, broker_url: str, queues: Sequence[str]) -> None:
        self.broker_url = broker_url
        self.queues = queues

    def collect(self) -> Iterator[Metric]:
        if is_rabbitmq(self.broker_url):
            help_text = "Tasks waiting in a Celery queue (RabbitMQ ready messages)."
        else:
            help_text = "Tasks waiting in a Celery queue (Redis list length)."
        depths = queue_depths(self.broker_url, self.queues)
        family = GaugeMetricFamily("cqrs_queue_depth", help_text, labels=["queue"])
        for queue, depth in zip(self.queues, depths, strict=True):
            family.add_metric([queue], float(depth))
        yield family


class _Scrape:
    """A registry-like object: process metrics plus scrape-time collectors."""

    def __init__(self, collectors: Sequence[tuple[str, Collector]]) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        path = multiprocess_dir()
        if path:
            prune_dead_processes(path)
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=path)
            yield from registry.collect()
        else:
            yield from REGISTRY.collect()
        errors = GaugeMetricFamily(
            "cqrs_scrape_error",
            "1 if a scrape-time collector failed during this scrape.",
            labels=["collector"],
        )
        for name, collector in self.collectors:
            try:
                # Materialise first, so that a failure yields nothing partial.
                metrics = list(collector.collect())
            except Exception as exc:
                logger.warning("metrics collector %s failed: %r", name, exc)
                errors.add_metric([name], 1.0)
                continue
            errors.add_metric([name], 0.0)
            yield from metrics
        yield errors


def render(collectors: Sequence[tuple[str, Collector]]) -> bytes:
    """Return the Prometheus text exposition of everything."""
    return generate_latest(_Scrape(collectors))


def is_allowed(
    remote_addr: str | None,
    authorization: str | None,
    *,
    allowed: Sequence[str],
    token: str,
) -> bool:
    """Allow a scrape from an allowed address or network, or with the token."""
    if token and authorization == f"Bearer {token}":
        return True
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return False
    for entry in allowed:
        try:
            if address in ipaddress.ip_network(entry.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def start_exporter(port: int, *, addr: str = "0.0.0.0") -> Callable[[], Any]:  # noqa: S104
    """Serve this host's metrics on a port (workers in their own container)."""
    from prometheus_client import start_http_server

    registry: Any = _Scrape(())
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return server.shutdown
