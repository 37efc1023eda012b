"""Publishers of integration events: RabbitMQ, Redis Streams, or none.

Chosen by `INTEGRATION_EVENTS_BROKER`. A publisher raises when the broker did
not take the message, so that the caller (the effects mechanism) retries: at
least once, with the same `event_id`, which consumers dedupe on. One connection
per process is reused; a failed one is dropped and opened again.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from typing import Any, Protocol

import redis
from django.conf import settings
from kombu import Connection, Exchange, Producer


class Publisher(Protocol):
    def publish(self, message: dict[str, Any]) -> None:
        """Hand `message` to the broker; raise if it did not take it."""
        ...


class NullPublisher:
    """Publish nothing (INTEGRATION_EVENTS_BROKER=none)."""

    def publish(self, message: dict[str, Any]) -> None:
        return None


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), sort_keys=True).encode()


class RabbitMQPublisher:
    """Publish to a durable topic exchange, routing key = the public type.

    Messages are persistent and confirmed by the broker (publisher confirms):
    `publish` returns once RabbitMQ has taken responsibility for the message,
    and raises if it refused it or did not answer in time.
    """

    def __init__(self, url: str, *, exchange: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self.exchange = Exchange(exchange, type="topic", durable=True)
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def publish(self, message: dict[str, Any]) -> None:
        with self._lock:
            reused = self._connection is not None and self._pid == os.getpid()
            try:
                self._publish(message)
            except Exception:
                self.close()
                if not reused:
                    raise
                # The kept connection may have died while idle (a broker
                # restart): one more try on a new one before giving up.
                try:
                    self._publish(message)
                except Exception:
                    self.close()
                    raise

    def _publish(self, message: dict[str, Any]) -> None:
        producer = self._get_producer()
        producer.publish(
            encode(message),
            exchange=self.exchange,
            routing_key=message["type"],
            declare=[self.exchange],
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,
            message_id=message["event_id"],
            type=message["type"],
            headers={"version": message["version"], "order_id": message["order_id"]},
            timeout=self.timeout,
            confirm_timeout=self.timeout,
        )

    def _get_producer(self) -> Producer:
        if self._pid != os.getpid():
            # A forked child must not share its parent's socket.
            self._connection = self._producer = None
            self._pid = os.getpid()
        if self._producer is None:
            connection = Connection(
                self.url,
                connect_timeout=self.timeout,
                transport_options={"confirm_publish": True},
            )
            connection.ensure_connection(max_retries=1)
            self._connection = connection
            self._producer = Producer(connection.channel())
        return self._producer

    def close(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            # The connection may be broken already: nothing to release then.
            with contextlib.suppress(Exception):
                connection.release()


class RedisStreamPublisher:
    """Append to a Redis stream (XADD), trimmed to about `maxlen` entries."""

    def __init__(self, url: str, *, stream: str, maxlen: int, timeout: float) -> None:
        self.stream = stream
        self.maxlen = maxlen
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    def publish(self, message: dict[str, Any]) -> None:
        self.client.xadd(
            self.stream,
            {
                "event_id": message["event_id"],
                "type": message["type"],
                "version": message["version"],
                "order_id": message["order_id"],
                "payload": encode(message),
            },
            maxlen=self.maxlen,
            approximate=True,
        )

    def close(self) -> None:
        self.client.close()


_publishers: dict[tuple[Any, ...], Publisher] = {}
_publishers_lock = threading.Lock()


def get_publisher() -> Publisher:
    """Return this process's publisher for the current settings."""
    broker = settings.INTEGRATION_EVENTS_BROKER
    url = settings.INTEGRATION_EVENTS_URL
    timeout = float(settings.INTEGRATION_EVENTS_TIMEOUT_SECONDS)
    if broker == "rabbitmq":
        key: tuple[Any, ...] = (broker, url, settings.INTEGRATION_EVENTS_EXCHANGE)
    elif broker == "redis":
        key = (
            broker,
            url,
            settings.INTEGRATION_EVENTS_STREAM,
            settings.INTEGRATION_EVENTS_STREAM_MAXLEN,
        )
    elif broker == "none":
        return NullPublisher()
    else:
        raise ValueError(
            f"INTEGRATION_EVENTS_BROKER must be rabbitmq, redis or none: {broker!r}"
        )
    with _publishers_lock:
        publisher = _publishers.get(key)
        if publisher is None:
            publisher = _publishers[key] = _new(key, timeout)
        return publisher


def _new(key: tuple[Any, ...], timeout: float) -> Publisher:
    if key[0] == "rabbitmq":
        return RabbitMQPublisher(key[1], exchange=key[2], timeout=timeout)
    return RedisStreamPublisher(key[1], stream=key[2], maxlen=key[3], timeout=timeout)


def close_all() -> None:
    """Close and forget every publisher of this process."""
    with _publishers_lock:
        publishers = list(_publishers.values())
        _publishers.clear()
    for publisher in publishers:
        close = getattr(publisher, "close", None)
        if close is not None:
            close()
