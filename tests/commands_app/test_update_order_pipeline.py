"""update-order through the real pipeline: API → worker → events → read models.

The `worker` fixture is one real Celery worker process for every queue (commands,
projections, effects); the gateway is the simulated one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from rest_framework.test import APIClient

from commands_app import acceptance, eventstore
from commands_app.domain.order import Order
from commands_app.models import CommandRecord, StoredEvent
from projections.models import Checkpoint
from projections.registry import PROJECTOR_NAMES
from tests.support.commands import (
    ADDRESS,
    GOOD_CARD,
    final_status,
    place_order,
    register_product,
    run,
    submit,
)
from tests.support.processes import Worker, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


@pytest.fixture(autouse=True)
def _projected_before_the_flush(worker: Any) -> Iterator[None]:
    """Let the worker's projections catch up before the test's tables are emptied.

    A round still running after the flush would write rows of this test into the
    next one's read tables (projection tests compare them with a rebuild).
    """
    yield

    def caught_up() -> bool:
        head = eventstore.head()
        reached = Checkpoint.objects.filter(name__in=PROJECTOR_NAMES).values_list(
            "tx_id", "position"
        )
        return len(reached) == len(PROJECTOR_NAMES) and all(
            tuple(row) >= (head.tx_id, head.position) for row in reached
        )

    wait_until(caught_up, timeout=60, interval=0.1)


LYON = {**ADDRESS, "line1": "2 place Bellecour", "city": "Lyon", "postal_code": "69002"}


def types_of(status: dict[str, Any]) -> list[str]:
    return list(
        StoredEvent.objects.filter(metadata__command_id=status["id"])
        .order_by("position")
        .values_list("type", flat=True)
    )


def read_at(client: APIClient, url: str, position: int) -> Any:
    """Read once the read models have applied `position`."""

    def attempt() -> Any:
        response = client.get(url, {"min_position": position})
        assert response.status_code in (200, 503), response.content
        return response.json() if response.status_code == 200 else None

    return wait_until(attempt, timeout=30, interval=0.05)


def test_changing_the_lines_moves_stock_by_the_difference_and_the_reads_follow(
    worker, staff_api, alice_api
):
    mug = register_product(staff_api, sku="UPD-MUG", stock=10, price=400)
    tea = register_product(staff_api, sku="UPD-TEA", stock=5, price=250)
    order = place_order(alice_api, mug, quantity=2)
    order_id = order["aggregate_id"]
    status = run(
        alice_api,
        "update-order",
        {
            "order_id": order_id,
            "lines": [
                {"product_id": mug, "quantity": 1},
                {"product_id": tea, "quantity": 3},
            ],
            "shipping_address": LYON,
        },
    )
    assert status["status"] == "succeeded", status
    assert status["result"] == {
        "order_id": order_id,
        "total_cents": 400 + 3 * 250,
        "changed": ["lines", "shipping_address"],
    }
    assert types_of(status) == [
        "order.lines_changed.v1",
        "order.shipping_address_changed.v1",
        "product.stock_released.v1",
        "product.stock_reserved.v1",
    ]
    position = status["position"]

    read = read_at(alice_api, f"/api/orders/{order_id}/", position)
    assert read["status"] == "placed"
    assert read["total_cents"] == 1150
    assert read["currency"] == "EUR"
    assert [(line["sku"], line["quantity"]) for line in read["lines"]] == [
        ("UPD-MUG", 1),
        ("UPD-TEA", 3),
    ]
    assert read["shipping_address"]["city"] == "Lyon"
    assert [entry["event"] for entry in read["history"]] == [
        "placed",
        "lines_changed",
        "shipping_address_changed",
    ]
    assert read_at(alice_api, f"/api/products/{mug}/", position)["available"] == 9
    assert read_at(alice_api, f"/api/products/{tea}/", position)["available"] == 2
    (mine,) = [
        row
        for row in read_at(alice_api, "/api/orders/", position)["results"]
        if row["id"] == order_id
    ]
    assert mine["total_cents"] == 1150
    sales = read_at(staff_api, "/api/stats/sales/", position)
    assert sum(day["revenue_cents"] for day in sales["results"]) == 1150
    assert sum(day["units"] for day in sales["results"]) == 4


def test_lines_short_of_stock_are_rejected_and_change_nothing(
    worker, staff_api, alice_api
):
    mug = register_product(staff_api, sku="UPD-SHORT", stock=3, price=400)
    order = place_order(alice_api, mug, quantity=2)
    status = run(
        alice_api,
        "update-order",
        {
            "order_id": order["aggregate_id"],
            "lines": [{"product_id": mug, "quantity": 4}],
            "shipping_address": LYON,
        },
    )
    assert status["status"] == "rejected"
    assert status["error"]["code"] == "insufficient_stock"
    assert status["error"]["details"] == {
        "product_id": mug,
        "available": 1,
        "requested": 2,
    }
    assert types_of(status) == []
    unknown = run(
        alice_api,
        "update-order",
        {
            "order_id": order["aggregate_id"],
            "lines": [
                {"product_id": "00000000-0000-4000-8000-000000000000", "quantity": 1}
            ],
        },
    )
    assert unknown["error"]["code"] == "product_not_found"


def test_a_paid_order_keeps_its_lines_but_may_change_its_address_until_shipped(
    worker, staff_api, alice_api
):
    order = place_order(alice_api, register_product(staff_api, sku="UPD-PAID"))
    order_id = order["aggregate_id"]
    paid = run(alice_api, "pay-order", {"order_id": order_id, "card": GOOD_CARD})
    assert paid["status"] == "succeeded", paid
    lines = run(
        alice_api,
        "update-order",
        {"order_id": order_id, "lines": [{"product_id": order_id, "quantity": 1}]},
    )
    assert lines["status"] == "rejected"
    assert lines["error"]["code"] == "invalid_state"
    assert lines["error"]["message"] == "A paid order cannot be given new lines."
    moved = run(
        staff_api, "update-order", {"order_id": order_id, "shipping_address": LYON}
    )
    assert moved["status"] == "succeeded", moved
    assert types_of(moved) == ["order.shipping_address_changed.v1"]
    run(staff_api, "ship-order", {"order_id": order_id})
    late = run(
        alice_api, "update-order", {"order_id": order_id, "shipping_address": ADDRESS}
    )
    assert late["status"] == "rejected"
    assert late["error"]["message"] == (
        "A shipped order cannot be sent to another address."
    )


def test_an_update_is_checked_at_accept_and_accepted_once_per_key(
    worker, staff_api, alice_api, bob_api
):
    order = place_order(alice_api, register_product(staff_api, sku="UPD-KEY"))
    order_id = order["aggregate_id"]
    nothing = submit(alice_api, "update-order", {"order_id": order_id})
    assert nothing.status_code == 400
    assert nothing.json()["code"] == "validation_error"
    empty = submit(alice_api, "update-order", {"order_id": order_id, "lines": []})
    assert empty.status_code == 400
    foreign = submit(
        bob_api, "update-order", {"order_id": order_id, "shipping_address": LYON}
    )
    assert foreign.status_code == 404
    assert foreign.json()["code"] == "order_not_found"
    body = {"order_id": order_id, "shipping_address": LYON}
    first = submit(alice_api, "update-order", body, **{"Idempotency-Key": "move-1"})
    again = submit(alice_api, "update-order", body, **{"Idempotency-Key": "move-1"})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert final_status(alice_api, first.json()["id"])["status"] == "succeeded"
    same = run(alice_api, "update-order", body)
    assert same["status"] == "succeeded"
    assert same["result"]["changed"] == []
    assert types_of(same) == []


def test_changes_racing_new_orders_and_a_payment_never_oversell_or_change_paid_lines(
    worker, output_dir, staff_api, alice_api, bob_api, monkeypatch
):

    product_id = register_product(staff_api, sku="UPD-RACE", stock=6, price=100)
    mine = place_order(alice_api, product_id, quantity=1)["aggregate_id"]
    paying = place_order(alice_api, product_id, quantity=1)["aggregate_id"]
    more = Worker(queues="commands", concurrency=4, log_dir=output_dir).start()
    try:
        # Hold the tasks back until all are stored, then release them at once.
        held: list[CommandRecord] = []
        monkeypatch.setattr(acceptance, "enqueue", held.append)
        bodies = [
            (
                alice_api,
                "update-order",
                {
                    "order_id": mine,
                    "lines": [{"product_id": product_id, "quantity": 4}],
                },
            ),
            (alice_api, "pay-order", {"order_id": paying, "card": GOOD_CARD}),
            (
                alice_api,
                "update-order",
                {
                    "order_id": paying,
                    "lines": [{"product_id": product_id, "quantity": 2}],
                },
            ),
            *[
                (
                    bob_api,
                    "place-order",
                    {
                        "lines": [{"product_id": product_id, "quantity": 1}],
                        "shipping_address": ADDRESS,
                    },
                )
                for _ in range(3)
            ],
        ]
        ids = [
            (client, submit(client, name, body).json()["id"])
            for client, name, body in bodies
        ]
        monkeypatch.undo()
        for record in held:
            acceptance.enqueue(record)
        outcomes = [final_status(client, command_id, 60) for client, command_id in ids]
    finally:
        more.stop()
    assert {o["status"] for o in outcomes} <= {"succeeded", "rejected"}, outcomes
    # Seven more units asked for, four left: some lose, on stock.
    codes = [o["error"]["code"] for o in outcomes if o["status"] == "rejected"]
    assert "insufficient_stock" in codes, outcomes
    events = StoredEvent.objects.filter(stream_id=f"product-{product_id}")
    reserved = sum(
        e.data["quantity"] for e in events.filter(type="product.stock_reserved.v1")
    )
    released = sum(
        e.data["quantity"] for e in events.filter(type="product.stock_released.v1")
    )
    assert 0 <= reserved - released <= 6, "never more reserved than the stock"
    # What each order reserved is what its lines say, whatever won the races.

    held_by_orders = 0
    for order_id in [mine, paying] + [
        o["aggregate_id"] for o in outcomes[3:] if o["status"] == "succeeded"
    ]:
        stream = f"order-{order_id}"
        order = Order.from_events(
            UUID(order_id), eventstore.load_streams([stream])[stream]
        )
        held_by_orders += sum(order.reserved_quantities().values())
        # A paid order was charged for the lines it has: none changed after.
        assert order.status != "paid" or order.paid_cents == order.total_cents
    assert held_by_orders == reserved - released
