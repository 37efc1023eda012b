"""Projection faults: a projector killed mid-batch, a poison event, no channel layer."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from tests.reliability.driver import Driver
from tests.reliability.reconcile import reconcile
from tests.reliability.services import PrivateRedis
from tests.support.processes import Worker, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.worker]


def checkpoints(driver: Driver) -> dict[str, int]:
    with psycopg.connect(driver.stack.read_dsn) as read:
        return dict(read.execute("SELECT name, position FROM read_checkpoints"))


def test_a_projector_killed_mid_batch_resumes_and_applies_each_event_once(
    driver: Driver,
) -> None:
    stack = driver.stack
    items = [
        {
            "sku": f"PRJ-{uuid.uuid4().hex[:12]}",
            "name": "P",
            "price_cents": 1,
            "initial_stock": 1,
        }
        for _ in range(4000)
    ]
    before = max(checkpoints(driver).values(), default=0)
    answer = driver.send("staff", "import-products", {"products": items})
    assert driver.final("staff", str(answer.command_id), timeout=90)["status"] == (
        "succeeded"
    )
    # Kill the projection worker once it has applied some of the import, not all.
    wait_until(
        lambda: max(checkpoints(driver).values()) > before, timeout=30, interval=0.01
    )
    assert stack.projections is not None
    stack.projections.kill()
    stack.projections = Worker(
        queues="projections", concurrency=1, log_dir=stack.log_dir, **stack.env
    ).start()
    reconcile(stack, accepted=driver.accepted)


def test_a_poison_event_is_parked_while_other_orders_are_projected(
    driver: Driver,
) -> None:
    stack = driver.stack
    product = driver.register_product(stock=5)
    placed = driver.place_order("customer2", product)
    order = driver.final("customer2", str(placed.command_id))["aggregate_id"]
    with psycopg.connect(stack.dsn) as db:
        row = db.execute(
            "INSERT INTO events (stream_id, version, type, data, metadata) "
            "VALUES (%s, 2, 'order.paid.v1', %s, %s) RETURNING position",
            [
                f"order-{order}",
                json.dumps({"order_id": order, "amount_cents": "x"}),
                json.dumps({"recorded_by": "test-poison"}),
            ],
        ).fetchone()
    assert row is not None
    poison = row[0]
    stack.foreign_positions.add(poison)
    later = driver.place_order("customer3", product)
    status = driver.final("customer3", str(later.command_id))
    session = stack.session("customer3")
    wait_until(
        lambda: (
            session.get(
                f"{stack.url}/api/orders/{status['aggregate_id']}/", timeout=5
            ).status_code
            == 200
        ),
        timeout=30,
    )
    # Every projection has gone past the poison (parking it or not handling it).
    wait_until(lambda: min(checkpoints(driver).values()) > poison, timeout=30)
    with psycopg.connect(stack.read_dsn) as read:
        letters = read.execute(
            "SELECT id, projection, status FROM read_dead_letters WHERE position = %s",
            [poison],
        ).fetchall()
    assert letters
    assert {letter[2] for letter in letters} == {"parked"}, letters
    stack.manage("replay_dead_letters", "--discard", *(str(x[0]) for x in letters))
    reconcile(stack, accepted=driver.accepted)


def test_commands_succeed_while_the_channel_layer_is_unreachable(
    driver: Driver,
) -> None:
    stalled = PrivateRedis(driver.stack.log_dir).start()
    stalled.pause()  # accepts connections, answers nothing: the worst case
    try:
        driver.replace_commands_worker(CHANNEL_LAYER_URL=stalled.url)
        product = driver.register_product(stock=10)
        answers = driver.burst([product], 6)
        for answer in answers:
            status = driver.final(answer.who, str(answer.command_id), timeout=30)
            assert status["status"] == "succeeded", status
    finally:
        stalled.resume()
        stalled.stop()
    reconcile(driver.stack, accepted=driver.accepted)
