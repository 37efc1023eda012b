"""Killed and paused command workers, on real processes: nothing lost, nothing twice."""

from __future__ import annotations

import os
import signal
import time

import psycopg
import pytest

from tests.reliability.driver import Driver
from tests.reliability.reconcile import reconcile
from tests.support.commands import GOOD_CARD
from tests.support.processes import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.worker]


def test_killing_worker_children_again_and_again_during_a_burst_loses_nothing(
    driver: Driver,
) -> None:
    worker = driver.replace_commands_worker(PAYMENT_GATEWAY_LATENCY_MS="400")
    product = driver.register_product(stock=40)
    orders = [driver.paid_order(f"customer{i}", product) for i in range(6)]
    payments = [answer.command_id for _, answer in orders]
    kills = 0
    deadline = time.monotonic() + 20
    while kills < 3 and time.monotonic() < deadline:
        running = [
            cid
            for cid in payments
            if driver.command_row(str(cid))["status"] == "running"
        ]
        children = worker.children()
        if running and children:
            os.kill(children[0], signal.SIGKILL)  # the pool replaces it
            kills += 1
            time.sleep(0.3)
        time.sleep(0.02)
    assert kills >= 1
    for (_, answer), i in zip(orders, range(6), strict=True):
        assert driver.final(f"customer{i}", str(answer.command_id))["status"] == (
            "succeeded"
        )
    reconcile(driver.stack, accepted=driver.accepted)


def test_killing_the_worker_main_process_mid_burst_loses_nothing(
    driver: Driver,
) -> None:
    worker = driver.replace_commands_worker(PAYMENT_GATEWAY_LATENCY_MS="400")
    products = [driver.register_product(stock=3) for _ in range(2)]
    # SIGKILL to the main process and its children at once, the moment one
    # order of the burst runs.
    with driver.killing_at_first_running(worker, "place-order") as killed:
        answers = driver.burst(products, 10)
        assert all(a.status == 202 for a in answers), answers
        assert killed.wait(20), "no order of the burst was seen running"
    ids = [str(a.command_id) for a in answers]
    driver.replace_commands_worker()
    reconcile(driver.stack, accepted=driver.accepted)
    finals = [driver.command_row(c)["status"] for c in ids]
    # Six in stock for ten one-item orders: exactly six win, whatever died.
    assert finals.count("succeeded") == 6, finals
    assert finals.count("rejected") == 4, finals


def test_an_import_whose_worker_is_killed_mid_way_resumes_and_registers_once(
    driver: Driver,
) -> None:
    worker = driver.replace_commands_worker(IMPORT_CHUNK_SIZE="100")
    items = [
        {
            "sku": f"IMP-{i:05d}-{os.getpid()}",
            "name": f"Item {i}",
            "price_cents": 5,
            "initial_stock": 1,
        }
        for i in range(3000)
    ]
    answer = driver.send("staff", "import-products", {"products": items})
    assert answer.status == 202, answer
    command_id = str(answer.command_id)
    wait_until(
        lambda: 0 < driver.command_row(command_id)["progress"] < 60,
        timeout=30,
        interval=0.01,
    )
    worker.kill()
    progress = driver.command_row(command_id)["progress"]
    driver.replace_commands_worker(IMPORT_CHUNK_SIZE="100")
    status = driver.final("staff", command_id, timeout=90)
    assert status["status"] == "succeeded", status
    assert status["result"] == {"imported": 3000, "skipped": 0}
    assert driver.command_row(command_id)["attempt"] == 2
    assert 0 < progress < 100
    reconcile(driver.stack, accepted=driver.accepted)


def test_a_worker_paused_past_its_lease_cannot_commit_after_another_finished(
    driver: Driver,
) -> None:
    """The charge's effect, paused mid-gateway-call (the simulated gateway)."""
    product = driver.register_product(stock=5)
    placed = driver.place_order("customer1", product)
    assert placed.command_id is not None
    order = driver.final("customer1", placed.command_id)["aggregate_id"]
    slow = driver.replace_commands_worker(
        PAYMENT_GATEWAY_LATENCY_MS="2500", EFFECTS_LEASE_SECONDS="2", concurrency="1"
    )
    answer = driver.send(
        "customer1", "pay-order", {"order_id": order, "card": GOOD_CARD}
    )
    command_id = str(answer.command_id)
    driver.wait_running(command_id)
    wait_until(lambda: charge_attempts(driver, order) == 1, interval=0.02)
    assert slow.process is not None
    os.killpg(slow.process.pid, signal.SIGSTOP)  # mid-charge, the lease runs out
    try:
        driver.stack.commands = None
        other = driver.replace_commands_worker()
        status = driver.final("customer1", command_id, timeout=30)
        assert status["status"] == "succeeded", status
        assert charge_attempts(driver, order) == 2
        assert driver.command_row(command_id)["attempt"] == 1
    finally:
        os.killpg(slow.process.pid, signal.SIGCONT)
    wait_until(lambda: b"was fenced off" in slow.log_path.read_bytes(), timeout=15)
    assert driver.command_row(command_id)["status"] == "succeeded"
    assert other.log_path.exists()
    reconcile(driver.stack, accepted=driver.accepted)


def charge_attempts(driver: Driver, order_id: str) -> int:
    with psycopg.connect(driver.stack.dsn) as db:
        row = db.execute(
            "SELECT attempts FROM effects WHERE kind = 'charge' AND stream_id = %s",
            [f"order-{order_id}"],
        ).fetchone()
    return int(row[0]) if row else 0
