"""Integration events through the real brokers: RabbitMQ and Redis Streams.

RabbitMQ is a required service (127.0.0.1:5672 on the development machines and
in CI, scripts/ensure_services.sh waits for it): these tests fail, never skip,
when it does not answer. Each test publishes to an exchange or stream of its
own and deletes what it declared.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
import redis
from kombu import Connection, Exchange, Queue
from kombu.exceptions import OperationalError

from commands_app.eventstore import RecordedEvent
from commands_app.integration import event_id, publish_event, publishers
from tests.commands_app.recorded import cancelled, paid, placed, shipped, store
from tests.commands_app.test_integration import check

pytestmark = [pytest.mark.integration, pytest.mark.django_db]
CUSTOMER = 31


@pytest.fixture
def amqp(settings) -> Iterator[Connection]:
    """A connection to the real RabbitMQ, or a failure that says it is down."""
    settings.INTEGRATION_EVENTS_BROKER = "rabbitmq"
    connection = Connection(settings.INTEGRATION_EVENTS_URL, connect_timeout=5)
    try:
        connection.ensure_connection(max_retries=1)
    except Exception as exc:
        pytest.fail(
            f"RabbitMQ does not answer at {settings.INTEGRATION_EVENTS_URL} ({exc}). "
            "It is a required service of the test suite: start it "
            "(scripts/ensure_services.sh waits for it) or set INTEGRATION_EVENTS_URL."
        )
    yield connection
    publishers.close_all()
    connection.release()


@pytest.fixture
def exchange(settings, amqp: Connection) -> Iterator[Exchange]:
    """This test's own topic exchange, deleted afterwards."""
    name = f"cqrs-orders.integration.test-{uuid4().hex[:12]}"
    settings.INTEGRATION_EVENTS_EXCHANGE = name
    exchange = Exchange(name, type="topic", durable=True)
    exchange(amqp.default_channel).declare()
    yield exchange
    exchange(amqp.default_channel).delete()


@pytest.fixture
def queue(amqp: Connection, exchange: Exchange) -> Iterator[Queue]:
    """An exclusive queue bound to every public type, as a consumer declares it."""
    bound = Queue(
        f"test-consumer-{uuid4().hex[:12]}",
        exchange=exchange,
        routing_key="orders.#",
        exclusive=True,
        auto_delete=True,
    )(amqp.default_channel)
    bound.declare()
    yield bound
    bound.delete()


def consume(queue: Queue, count: int, *, timeout: float = 10) -> list[Any]:
    """Take `count` messages off `queue` (acknowledged), in arrival order."""
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(messages) < count and time.monotonic() < deadline:
        message = queue.get(no_ack=False)
        if message is None:
            time.sleep(0.02)
            continue
        message.ack()
        messages.append(message)
    assert len(messages) == count, f"got {len(messages)} of {count} messages"
    assert queue.get() is None, "more messages than published"
    return messages


def three_orders() -> list[RecordedEvent]:
    """Store three orders' histories; return their events interleaved per order."""
    histories: list[list[RecordedEvent]] = []
    for _ in range(3):
        order = placed(CUSTOMER)
        histories.append(
            store([order, paid(order), shipped(order)])
            if len(histories) != 1
            else store([order, cancelled(order, by=CUSTOMER)])
        )
    interleaved = []
    for step in range(3):
        interleaved += [history[step] for history in histories if step < len(history)]
    return interleaved


def assert_in_order_per_order(bodies: list[dict[str, Any]]) -> None:
    last: dict[str, int | None] = {}
    for body in bodies:
        order = body["order_id"]
        assert body["previous_sequence"] == last.get(order), body
        assert body["sequence"] > (last.get(order) or 0)
        last[order] = body["sequence"]


def test_rabbitmq_consumers_get_every_event_valid_and_in_order_per_order(
    queue: Queue,
) -> None:
    events = three_orders()

    for event in events:
        publish_event(event)

    messages = consume(queue, len(events))
    bodies = [json.loads(message.body) for message in messages]
    for message, body, event in zip(messages, bodies, events, strict=True):
        check(body)
        assert body["event_id"] == event_id(event)
        assert message.properties["message_id"] == body["event_id"]
        assert message.properties["delivery_mode"] == 2  # persistent
        assert message.content_type == "application/json"
        assert message.delivery_info["routing_key"] == body["type"]
    assert_in_order_per_order(bodies)
    assert {body["type"] for body in bodies} == {
        "orders.order_placed",
        "orders.order_paid",
        "orders.order_shipped",
        "orders.order_cancelled",
    }


def test_a_consumer_binding_one_type_gets_only_that_type(
    amqp: Connection, exchange: Exchange
) -> None:
    shipments = Queue(
        f"test-shipments-{uuid4().hex[:12]}",
        exchange=exchange,
        routing_key="orders.order_shipped",
        exclusive=True,
        auto_delete=True,
    )(amqp.default_channel)
    shipments.declare()
    try:
        for event in three_orders():
            publish_event(event)
        bodies = [json.loads(m.body) for m in consume(shipments, 2)]
    finally:
        shipments.delete()
    assert [body["type"] for body in bodies] == ["orders.order_shipped"] * 2


def test_publishing_an_event_twice_sends_the_same_event_id(queue: Queue) -> None:
    (event,) = store([placed(CUSTOMER)])

    publish_event(event)
    publish_event(event)

    first, second = consume(queue, 2)
    assert first.properties["message_id"] == second.properties["message_id"]
    assert json.loads(first.body) == json.loads(second.body)


def test_a_broken_connection_is_replaced_on_the_next_publish(queue: Queue) -> None:
    first, second = store([placed(CUSTOMER)]) + store([placed(CUSTOMER)])
    publish_event(first)
    publisher = publishers.get_publisher()
    assert isinstance(publisher, publishers.RabbitMQPublisher)
    broken = publisher._connection
    assert broken is not None
    # The kept connection dies while idle, as on a broker restart.
    broken.connection.sock.shutdown(socket.SHUT_RDWR)

    publish_event(second)

    assert publisher._connection is not None
    assert publisher._connection is not broken

    bodies = [json.loads(m.body) for m in consume(queue, 2)]
    assert [b["event_id"] for b in bodies] == [event_id(first), event_id(second)]


def test_publishing_raises_when_the_broker_is_unreachable(settings, amqp) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.INTEGRATION_EVENTS_URL = f"amqp://guest:guest@127.0.0.1:{port}//"
    settings.INTEGRATION_EVENTS_TIMEOUT_SECONDS = 1
    (event,) = store([placed(CUSTOMER)])

    with pytest.raises(OperationalError, match="Connection refused"):
        publish_event(event)


def test_nothing_is_published_when_the_broker_is_none(settings, queue) -> None:
    settings.INTEGRATION_EVENTS_BROKER = "none"
    (event,) = store([placed(CUSTOMER)])

    publish_event(event)

    time.sleep(0.2)
    assert queue.get() is None


@pytest.fixture
def stream(settings) -> Iterator[str]:
    """This test's own Redis stream, deleted afterwards."""
    name = f"cqrs-orders.integration.test-{uuid4().hex[:12]}"
    settings.INTEGRATION_EVENTS_BROKER = "redis"
    settings.INTEGRATION_EVENTS_URL = settings.REDIS_URL
    settings.INTEGRATION_EVENTS_STREAM = name
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield name
    publishers.close_all()
    client.delete(name)
    client.close()


def test_redis_stream_consumers_get_every_event_valid_and_in_order_per_order(
    stream: str, settings
) -> None:
    events = three_orders()

    for event in events:
        publish_event(event)

    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    entries: list[tuple[str, dict[str, str]]] = client.xrange(stream)  # type: ignore[assignment]
    client.close()
    assert len(entries) == len(events)
    bodies = []
    for (_entry_id, fields), event in zip(entries, events, strict=True):
        body = json.loads(fields["payload"])
        check(body)
        assert fields["event_id"] == body["event_id"] == event_id(event)
        assert fields["type"] == body["type"]
        assert fields["order_id"] == body["order_id"]
        bodies.append(body)
    assert_in_order_per_order(bodies)


def test_the_redis_stream_is_trimmed_to_about_its_maximum_length(
    stream: str, settings
) -> None:
    settings.INTEGRATION_EVENTS_STREAM_MAXLEN = 10
    order = placed(CUSTOMER)
    (event,) = store([order])

    for _ in range(500):
        publish_event(event)

    client = redis.Redis.from_url(settings.REDIS_URL)
    length = client.xlen(stream)
    client.close()
    assert 10 <= length < 500
