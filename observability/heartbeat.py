"""Worker heartbeats in Redis, so that a readiness probe can tell who is alive.

Each worker's main process adds its host name to one sorted set per queue it
consumes, scored by the time, every `interval` seconds, from a daemon thread.
A probe counts the members seen within the last few intervals: one ZCOUNT per
queue with a short socket timeout, so that it cannot hang.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence

import redis

logger = logging.getLogger(__name__)

KEY = "cqrs:heartbeat:{queue}"
STALE_AFTER_INTERVALS = 3


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def beat(url: str, hostname: str, queues: Iterable[str], interval: float) -> None:
    """Record that `hostname` consumes `queues` now; forget long-dead workers."""
    now = time.time()
    client = _client(url)
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                key = KEY.format(queue=queue)
                pipe.zadd(key, {hostname: now})
                pipe.zremrangebyscore(key, "-inf", now - 100 * interval)
                pipe.expire(key, int(100 * interval) + 1)
            pipe.execute()
    finally:
        client.close()


def forget(url: str, hostname: str, queues: Iterable[str]) -> None:
    """Remove a stopping worker at once, instead of waiting for it to go stale."""
    client = _client(url)
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.zrem(KEY.format(queue=queue), hostname)
            pipe.execute()
    finally:
        client.close()


def live_workers(url: str, queues: Sequence[str], interval: float) -> dict[str, int]:
    """Return, per queue, how many workers sent a heartbeat recently."""
    since = time.time() - STALE_AFTER_INTERVALS * interval
    client = _client(url)
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.zcount(KEY.format(queue=queue), since, "+inf")
            counts = pipe.execute()
    finally:
        client.close()
    return dict(zip(queues, (int(count) for count in counts), strict=True))


class Heartbeat:
    """A daemon thread that beats until stopped."""

    def __init__(
        self, url: str, hostname: str, queues: Sequence[str], interval: float
    ) -> None:
        self.url, self.hostname = url, hostname
        self.queues, self.interval = tuple(queues), interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            try:
                beat(self.url, self.hostname, self.queues, self.interval)
            except Exception as exc:
                logger.warning("heartbeat failed: %r", exc)
            if self._stop.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop.set()
        try:
            forget(self.url, self.hostname, self.queues)
        except Exception as exc:
            logger.warning("could not remove the heartbeat: %r", exc)
