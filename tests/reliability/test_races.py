"""Races over HTTP on real processes: scarce stock, and `Prefer: wait` under load.

The web server and the Celery workers are real processes on the test databases;
clients are threads, each with its own connection.
"""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings

from commands_app.models import CommandRecord
from commands_app.tokens import issue_token
from tests.conftest import make_user
from tests.queries_app.factories import append_event
from tests.reliability.reconcile import check_store
from tests.reliability.test_stateful import store_rows
from tests.support.commands import ADDRESS
from tests.support.processes import WebServer, Worker, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

FINAL = {"succeeded", "rejected", "failed"}


@pytest.fixture(scope="module")
def server(django_db_setup: Any, output_dir: Path) -> Iterator[WebServer]:
    process = WebServer(log_dir=output_dir).start()
    yield process
    process.stop()


def token_for(user: Any) -> str:
    return issue_token(user)


def session(token: str) -> requests.Session:
    client = requests.Session()
    client.headers["Authorization"] = f"Token {token}"
    return client


def register(server: WebServer, staff_token: str, sku: str, stock: int) -> str:
    response = session(staff_token).post(
        f"{server.url}/api/commands/register-product/",
        json={"sku": sku, "name": sku, "price_cents": 500, "initial_stock": stock},
        headers={"Prefer": "wait=10"},
        timeout=20,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded", response.json()
    return str(response.json()["aggregate_id"])


def test_thirty_customers_racing_for_seven_units_get_exactly_seven(
    server: WebServer, output_dir: Path
) -> None:
    worker = Worker(
        queues="commands,imports,projections", concurrency=4, log_dir=output_dir
    ).start()
    try:
        staff = token_for(make_user("race-staff", staff=True))
        customers = [token_for(make_user(f"race-customer{i}")) for i in range(30)]
        product = register(server, staff, "SCARCE-1", stock=7)
        start = threading.Barrier(len(customers))

        def order(token: str) -> requests.Response:
            with session(token) as client:  # one connection per customer
                start.wait()
                return client.post(
                    f"{server.url}/api/commands/place-order/",
                    json={
                        "lines": [{"product_id": product, "quantity": 1}],
                        "shipping_address": ADDRESS,
                    },
                    timeout=30,
                )

        with ThreadPoolExecutor(len(customers)) as pool:
            responses = list(pool.map(order, customers))
        assert [r.status_code for r in responses] == [202] * 30, [
            r.text for r in responses if r.status_code != 202
        ]
        ids = [r.json()["id"] for r in responses]

        def finished() -> list[CommandRecord] | None:
            records = list(CommandRecord.objects.filter(pk__in=ids))
            return records if all(r.status in FINAL for r in records) else None

        records = wait_until(finished, timeout=60, interval=0.2)
        outcomes = sorted((r.status, (r.error or {}).get("code", "")) for r in records)
        assert (
            outcomes
            == [("rejected", "insufficient_stock")] * 23 + [("succeeded", "")] * 7
        ), outcomes

        commands, events = store_rows()
        problems: list[str] = []
        check_store(commands, events, set(), problems)
        assert not problems, problems
        stream = [e for e in events if e[2] == f"product-{product}"]
        assert [e[4] for e in stream].count("product.stock_reserved.v1") == 7

        def available() -> bool:
            response = session(customers[0]).get(
                f"{server.url}/api/products/{product}/", timeout=10
            )
            return response.status_code == 200 and response.json()["available"] == 0

        wait_until(available, timeout=30, interval=0.2)
    finally:
        worker.stop()


def test_prefer_wait_at_its_caps_never_starves_plain_requests(
    server: WebServer, worker: Worker
) -> None:
    """Waiters (commands and min_position reads) at their caps, workers paused:
    plain requests still answer fast, and waiters beyond the cap get a 202."""
    staff = token_for(make_user("wait-staff", staff=True))
    customer = token_for(make_user("wait-customer"))
    product = register(server, staff, "WAIT-1", stock=1000)
    wait_until(
        lambda: (
            session(customer)
            .get(f"{server.url}/api/products/{product}/", timeout=10)
            .status_code
            == 200
        )
    )
    seen = CommandRecord.objects.count()
    command_waits = settings.COMMAND_MAX_CONCURRENT_WAITS
    read_waits = settings.READ_MAX_CONCURRENT_WAITS
    assert worker.process is not None
    os.killpg(worker.process.pid, signal.SIGSTOP)  # nothing finishes meanwhile
    # An event committed while the projections are paused: a position within
    # the store's head (one beyond it is refused at once) that stays unapplied.
    _tx_id, unapplied = append_event()
    stop = threading.Event()

    def wait_for_command(i: int) -> requests.Response:
        with session(staff) as client:
            return client.post(
                f"{server.url}/api/commands/register-product/",
                json={
                    "sku": f"WAITER-{i}",
                    "name": "Waiter",
                    "price_cents": 1,
                    "initial_stock": 1,
                },
                headers={"Prefer": "wait=10"},
                timeout=30,
            )

    def wait_for_position(_: int) -> int:
        """Read with a position the read model has not reached, again and again."""
        reads = 0
        with session(customer) as client:
            while not stop.is_set():
                client.get(
                    f"{server.url}/api/products/?min_position={unapplied}",
                    timeout=30,
                )
                reads += 1
        return reads

    def plain(i: int) -> tuple[float, int]:
        with session(customer) as client:
            began = time.monotonic()
            if i % 3 == 0:
                response = client.post(
                    f"{server.url}/api/commands/place-order/",
                    json={
                        "lines": [{"product_id": product, "quantity": 1}],
                        "shipping_address": ADDRESS,
                    },
                    timeout=30,
                )
            elif i % 3 == 1:
                response = client.get(f"{server.url}/api/products/", timeout=30)
            else:
                response = client.get(
                    f"{server.url}/api/products/{product}/", timeout=30
                )
            return time.monotonic() - began, response.status_code

    pool = ThreadPoolExecutor(command_waits + read_waits + 4)
    try:
        waiters = [pool.submit(wait_for_command, i) for i in range(command_waits)]
        readers = [pool.submit(wait_for_position, i) for i in range(read_waits)]
        # Every waiter's command is stored before it starts to wait.
        wait_until(
            lambda: CommandRecord.objects.count() >= seen + command_waits,
            timeout=20,
        )
        time.sleep(0.5)
        beyond = [wait_for_command(command_waits + i) for i in range(3)]
        timings: list[tuple[float, int]] = []
        with ThreadPoolExecutor(2) as clients:
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                timings += list(
                    clients.map(plain, range(len(timings), len(timings) + 2))
                )
        assert all(not w.done() for w in waiters), "the waiters must still be waiting"
    finally:
        stop.set()
        os.killpg(worker.process.pid, signal.SIGCONT)
        pool.shutdown(wait=False)
    for response in beyond:
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "accepted"
        assert "Preference-Applied" not in response.headers
        assert response.elapsed.total_seconds() < 1.0, response.elapsed
    assert {code for _, code in timings} <= {200, 202}, timings
    seconds = sorted(t for t, _ in timings)
    p95 = seconds[int(0.95 * (len(seconds) - 1))]
    assert len(seconds) >= 10, seconds
    assert p95 < 0.5, f"p95 {p95:.3f}s, median {statistics.median(seconds):.3f}s"
    # Once the worker resumes, the waiters get their final status.
    for waiter in waiters:
        response = waiter.result(timeout=30)
        assert response.status_code in (200, 202), response.text
        assert response.headers.get("Preference-Applied") == "wait=10"
    assert all(r.result(timeout=30) > 0 for r in readers)
