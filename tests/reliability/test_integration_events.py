"""Integration events end to end: commands through the real worker, the effects
relay publishing to the real RabbitMQ, a consumer reading them back, and a
RabbitMQ restart in the middle of the burst.

The consumer's queue is durable, as a real consumer's would be, so that it and
its persistent messages outlive the restart; the relay's publisher loses its
connection and its effects are retried with the same event ids.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from typing import Any
from uuid import uuid4

import pytest
from django.conf import settings
from kombu import Connection, Exchange, Queue

from commands_app.integration import PUBLISHED
from commands_app.models import CommandRecord, Effect, StoredEvent
from tests.commands_app.test_integration import check
from tests.support import rabbitmq
from tests.support.commands import ADDRESS, register_product, run, submit
from tests.support.processes import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

ORDERS = 16


def place(client: Any, product_id: str) -> str:
    order_id = str(uuid4())
    response = submit(
        client,
        "place-order",
        {
            "order_id": order_id,
            "lines": [{"product_id": product_id, "quantity": 1}],
            "shipping_address": ADDRESS,
        },
    )
    assert response.status_code == 202, response.content
    return order_id


def drain(queue: Queue) -> list[dict[str, Any]]:
    bodies = []
    while (message := queue.get(no_ack=False)) is not None:
        message.ack()
        bodies.append(json.loads(message.body))
    return bodies


def test_integration_events_reach_a_consumer_in_order_per_order_across_a_rabbitmq_restart(  # noqa: E501
    worker, staff_api, alice_api
) -> None:
    connection = Connection(settings.INTEGRATION_EVENTS_URL, connect_timeout=5)
    exchange = Exchange(settings.INTEGRATION_EVENTS_EXCHANGE, "topic", durable=True)
    queue = Queue(
        f"test-durable-consumer-{uuid4().hex[:12]}",
        exchange=exchange,
        routing_key="orders.#",
        durable=True,
        auto_delete=False,
    )
    queue(connection.default_channel).declare()
    try:
        product_id = register_product(staff_api, sku="INTEG-1", stock=10_000)
        orders = [place(alice_api, product_id) for _ in range(ORDERS // 2)]
        restart = threading.Thread(target=rabbitmq.restart_app, args=(2.0,))
        restart.start()
        while restart.is_alive():  # orders keep coming while the broker is away
            orders.append(place(alice_api, product_id))
            time.sleep(0.2)
        restart.join()
        orders += [place(alice_api, product_id) for _ in range(ORDERS // 2)]
        for order_id in orders[::2]:
            run(alice_api, "cancel-order", {"order_id": order_id})
        wait_until(
            lambda: (
                not CommandRecord.objects.exclude(
                    status__in=["succeeded", "rejected", "failed"]
                ).exists()
            ),
            timeout=60,
        )
        wait_until(
            lambda: (
                not Effect.objects.filter(kind="integration")
                .exclude(status="done")
                .exists()
            ),
            timeout=90,
        )

        # The restart did hit the relay: some publications had to be retried.
        retried = Effect.objects.filter(kind="integration", attempts__gt=1).count()
        assert retried > 0, "the RabbitMQ restart missed every publication"
        connection.release()
        connection = Connection(settings.INTEGRATION_EVENTS_URL, connect_timeout=5)
        bodies = drain(queue(connection.default_channel))
    finally:
        queue(connection.default_channel).delete()
        connection.release()

    published = StoredEvent.objects.filter(
        stream_id__in=[f"order-{order_id}" for order_id in orders],
        type__in=list(PUBLISHED),
    ).count()
    # Placed each, cancelled every other one.
    assert published == len(orders) + len(orders[::2])
    unique: dict[str, dict[str, Any]] = {}
    for body in bodies:  # at least once: a consumer dedupes on event_id
        check(body)
        unique.setdefault(body["event_id"], body)
    assert len(unique) == published
    chains: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for body in unique.values():
        chains[body["order_id"]].append(body)
    assert set(chains) == set(orders)
    for order_id, chain in chains.items():
        previous = None
        for body in chain:  # arrival order: no gap, nothing out of order
            assert body["previous_sequence"] == previous, (order_id, chain)
            previous = body["sequence"]
        assert chain[0]["type"] == "orders.order_placed"
