"""Money on real processes: charges and refunds happen once, after the decision.

The payment gateway is the simulated one (`commands_app.payments`), standing in
for the provider outside the system: it keeps its own ledger in the write
database, and its faults (timeouts, declines, a pause after its work) are
switched on across processes through Redis, card tokens and settings. Every
other part is real: the web server, Celery workers with their effects relays,
PostgreSQL and Redis of the private stack.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from commands_app.payments import TIMEOUTS_KEY
from tests.reliability.driver import Answer, Driver
from tests.reliability.reconcile import (
    EVENTS_SQL,
    LEDGER_SQL,
    check_money,
    reconcile,
    wait_for_effects,
)
from tests.support.commands import DECLINED_CARD, GOOD_CARD
from tests.support.processes import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.worker]


def placed_order(driver: Driver, who: str, product: str) -> str:
    placed = driver.place_order(who, product)
    assert placed.command_id is not None, placed
    status = driver.final(who, placed.command_id)
    assert status["status"] == "succeeded", status
    return str(status["aggregate_id"])


def pay(driver: Driver, who: str, order_id: str, card: Any = GOOD_CARD) -> Answer:
    return driver.send(who, "pay-order", {"order_id": order_id, "card": card})


def money_problems(driver: Driver, *, drained: bool = True) -> list[str]:
    with psycopg.connect(driver.stack.dsn) as db:
        events = list(db.execute(EVENTS_SQL))
        ledger = list(db.execute(LEDGER_SQL))
    problems: list[str] = []
    check_money(events, ledger, problems, drained=drained)
    return problems


def ledger_of(driver: Driver, order_id: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(driver.stack.dsn) as db:
        return list(
            db.execute(
                "SELECT kind, outcome, amount_cents, idempotency_key "
                "FROM gateway_ledger WHERE order_id = %s ORDER BY id",
                [order_id],
            )
        )


def order_events(driver: Driver, order_id: str) -> list[str]:
    with psycopg.connect(driver.stack.dsn) as db:
        return [
            row[0]
            for row in db.execute(
                "SELECT type FROM events WHERE stream_id = %s ORDER BY version",
                [f"order-{order_id}"],
            )
        ]


def charge_attempts(driver: Driver, order_id: str) -> int:
    with psycopg.connect(driver.stack.dsn) as db:
        row = db.execute(
            "SELECT attempts FROM effects WHERE kind = 'charge' AND stream_id = %s",
            [f"order-{order_id}"],
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_two_payments_and_a_cancel_at_once_for_fifty_orders_move_money_once(
    driver: Driver,
) -> None:
    """Two command workers (each with its relay) take the three commands at once."""
    driver.stack.worker()
    product = driver.register_product(stock=60, price=700)
    outcomes: dict[tuple[str, ...], int] = {}
    for round_ in range(50):
        who = f"customer{round_ % 8}"
        order_id = placed_order(driver, who, product)
        start = threading.Barrier(3)

        def send(
            name: str,
            who: str = who,
            order_id: str = order_id,
            start: threading.Barrier = start,
        ) -> Answer:
            start.wait()
            if name == "pay-order":
                return pay(driver, who, order_id)
            return driver.send(who, name, {"order_id": order_id})

        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(send, ["pay-order", "pay-order", "cancel-order"]))
        assert all(a.status == 202 for a in answers), answers
        finals = [driver.final(who, str(a.command_id)) for a in answers]
        wait_for_effects(driver.stack.dsn, 30)
        problems = money_problems(driver)
        assert not problems, (round_, problems)
        pays = [f["status"] for f in finals[:2]]
        assert pays.count("succeeded") <= 1, finals
        codes = tuple(
            sorted(
                f["status"] + ":" + (f["error"] or {}).get("code", "") for f in finals
            )
        )
        outcomes[codes] = outcomes.get(codes, 0) + 1
        charges = [r for r in ledger_of(driver, order_id) if r[0] == "charge"]
        assert len(charges) <= 1, charges
        refunded = [r for r in ledger_of(driver, order_id) if r[0] == "refund"]
        if finals[2]["status"] == "succeeded" and charges:
            assert [r[2] for r in refunded] == [700], (finals, refunded)
            assert order_events(driver, order_id)[-1] == "order.refunded.v1"
    reconcile(driver.stack, accepted=driver.accepted)
    print("outcomes of the 50 rounds:", outcomes)


def test_a_worker_killed_between_the_charge_and_its_append_charges_once(
    driver: Driver,
) -> None:
    product = driver.register_product(stock=5, price=1300)
    order_id = placed_order(driver, "customer1", product)
    paused = driver.replace_commands_worker(
        PAYMENT_GATEWAY_PAUSE_AFTER_CALL_MS="20000", concurrency="1"
    )
    answer = pay(driver, "customer1", order_id)
    assert answer.command_id is not None
    # The gateway has charged; the worker has not appended the outcome yet.
    wait_until(lambda: ledger_of(driver, order_id), timeout=30)
    assert "order.payment_captured.v1" not in order_events(driver, order_id)
    paused.kill()  # SIGKILL to the worker and its relay
    assert driver.command_row(str(answer.command_id))["status"] == "running"
    driver.replace_commands_worker()
    status = driver.final("customer1", str(answer.command_id), timeout=60)
    assert status["status"] == "succeeded", status
    assert status["result"]["amount_cents"] == 1300
    assert [r[:3] for r in ledger_of(driver, order_id)] == [
        ("charge", "succeeded", 1300)
    ]
    assert order_events(driver, order_id) == [
        "order.placed.v2",
        "order.payment_requested.v1",
        "order.payment_captured.v1",
    ]
    assert charge_attempts(driver, order_id) == 2
    reconcile(driver.stack, accepted=driver.accepted)


def test_a_gateway_timing_out_then_recovering_charges_once(driver: Driver) -> None:
    product = driver.register_product(stock=5, price=900)
    order_id = placed_order(driver, "customer2", product)
    # Each timeout happens after the gateway recorded the charge: the worst
    # case of an unknown outcome, retried with the same key.
    driver.stack.redis.client().set(TIMEOUTS_KEY, 2)
    answer = pay(driver, "customer2", order_id)
    status = driver.final("customer2", str(answer.command_id), timeout=60)
    assert status["status"] == "succeeded", status
    assert charge_attempts(driver, order_id) == 3
    ((kind, outcome, amount, key),) = ledger_of(driver, order_id)
    assert (kind, outcome, amount) == ("charge", "succeeded", 900)
    assert status["result"]["payment_id"] == key
    assert not money_problems(driver)


def test_a_declined_card_rejects_the_payment_and_the_order_can_be_paid_again(
    driver: Driver,
) -> None:
    product = driver.register_product(stock=5, price=400)
    order_id = placed_order(driver, "customer3", product)
    declined = pay(driver, "customer3", order_id, DECLINED_CARD)
    status = driver.final("customer3", str(declined.command_id))
    assert status["status"] == "rejected", status
    assert status["error"]["code"] == "payment_declined"
    assert [r[:3] for r in ledger_of(driver, order_id)] == [("charge", "declined", 400)]
    paid = pay(driver, "customer3", order_id)
    assert driver.final("customer3", str(paid.command_id))["status"] == "succeeded"
    assert [r[:3] for r in ledger_of(driver, order_id)] == [
        ("charge", "declined", 400),
        ("charge", "succeeded", 400),
    ]
    assert order_events(driver, order_id) == [
        "order.placed.v2",
        "order.payment_requested.v1",
        "order.payment_declined.v1",
        "order.payment_requested.v1",
        "order.payment_captured.v1",
    ]
    reconcile(driver.stack, accepted=driver.accepted)


def test_cancelling_a_paid_order_refunds_it_once_and_the_read_model_shows_it(
    driver: Driver,
) -> None:
    product = driver.register_product(stock=5, price=650)
    order_id = placed_order(driver, "customer4", product)
    paid = pay(driver, "customer4", order_id)
    assert driver.final("customer4", str(paid.command_id))["status"] == "succeeded"
    cancel = driver.send("staff", "cancel-order", {"order_id": order_id})
    status = driver.final("staff", str(cancel.command_id))
    assert status["status"] == "succeeded", status
    assert status["result"] == {"refund_cents": 650}
    wait_for_effects(driver.stack.dsn, 30)
    assert [r[:3] for r in ledger_of(driver, order_id)] == [
        ("charge", "succeeded", 650),
        ("refund", "succeeded", 650),
    ]
    assert order_events(driver, order_id)[-2:] == [
        "order.cancelled.v1",
        "order.refunded.v1",
    ]

    def refunded() -> Any:
        response = driver.stack.session("customer4").get(
            f"{driver.stack.url}/api/orders/{order_id}/", timeout=10
        )
        body = response.json()
        return body if body.get("refunded_cents") == 650 else None

    body = wait_until(refunded, timeout=30, interval=0.2)
    assert body["status"] == "cancelled"
    assert [e["event"] for e in body["history"]] == [
        "placed",
        "payment_requested",
        "paid",
        "cancelled",
        "refunded",
    ]
    reconcile(driver.stack, accepted=driver.accepted)


def test_a_payment_in_progress_refuses_a_second_payment_and_a_cancel(
    driver: Driver,
) -> None:
    product = driver.register_product(stock=5, price=300)
    order_id = placed_order(driver, "customer5", product)
    driver.replace_commands_worker(PAYMENT_GATEWAY_LATENCY_MS="2000")
    first = pay(driver, "customer5", order_id)
    wait_until(
        lambda: "order.payment_requested.v1" in order_events(driver, order_id),
        timeout=30,
    )
    second = driver.final(
        "customer5", str(pay(driver, "customer5", order_id).command_id)
    )
    cancel = driver.send("customer5", "cancel-order", {"order_id": order_id})
    cancelled = driver.final("customer5", str(cancel.command_id))
    for refused in (second, cancelled):
        assert refused["status"] == "rejected", refused
        assert refused["error"]["code"] == "payment_in_progress"
    assert driver.final("customer5", str(first.command_id))["status"] == "succeeded"
    reconcile(driver.stack, accepted=driver.accepted)
