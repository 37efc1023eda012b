"""Imports run on a worker of their own: an order placed during a 50,000-product
import finishes within its usual time.

The web server and the workers are started as `make run` starts them (queues and
concurrency read from the Makefile's COMMANDS_WORKER_CMD and IMPORTS_WORKER_CMD),
on a Redis and a broker of their own (a private Redis; on a RabbitMQ run, a
virtual host of their own), so that no other process of the session takes their
tasks or shares their flags. Two imports are queued: on a single worker serving
both queues they would hold all its processes and the order would wait for one
of them to end. (No projection worker: an order's final status does not wait
for the read models.)

The usual time is measured in the same test first, and the bound is generous
(3x + 1 s): the machine is shared; this checks isolation, not speed.
"""

from __future__ import annotations

import shlex
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from django.conf import settings

from commands_app import acceptance
from tests.conftest import make_user
from tests.reliability.services import PrivateRedis
from tests.support import rabbitmq
from tests.support.commands import ADDRESS
from tests.support.processes import ROOT, WebServer, Worker, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.timeout(300),
]

IMPORT_SIZE = 50_000
FINAL = {"succeeded", "rejected", "failed"}


def run_worker_args(variable: str) -> tuple[str, int]:
    """Return the queues and concurrency of a `make run` worker (Makefile)."""
    text = (ROOT / "Makefile").read_text()
    line = next(line for line in text.splitlines() if line.startswith(f"{variable} "))
    argv = shlex.split(line.split(":=", 1)[1])
    return argv[argv.index("-Q") + 1], int(argv[argv.index("-c") + 1])


@pytest.fixture
def own_services(output_dir: Path) -> Iterator[dict[str, str]]:
    """A Redis and a broker no other process of the test session uses.

    Redis too, not only the broker: it holds the projections' coalesced wake-up
    flag, which a wake-up left in this test's broker would hold for the session.
    """
    private = PrivateRedis(output_dir).start()
    # The database is shared, and the command row is the outbox: a worker of the
    # session (started by an earlier test) would publish this test's commands to
    # its own broker. Its command relay pauses while PUBLISH_LOCK is held here,
    # and this test's web publishes each command itself, on commit.
    env = {
        "REDIS_URL": private.url,
        "CHANNEL_LAYER_URL": private.url,
        "COMMANDS_RELAY_ENABLED": "false",
    }
    session = str(settings.CELERY_BROKER_URL)
    holder = psycopg.connect(database_dsn(), autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (acceptance.PUBLISH_LOCK,))
    try:
        if rabbitmq.is_rabbitmq(session):
            vhost = f"{rabbitmq.vhost_of(session)}-isolation"
            url = rabbitmq.with_vhost(session, vhost)
            rabbitmq.add_vhost(url)
            yield {**env, "CELERY_BROKER_URL": url}
            rabbitmq.delete_vhost(url)
        else:
            yield {**env, "CELERY_BROKER_URL": private.url}
    finally:
        holder.close()
        private.stop()


@pytest.fixture
def system(own_services: dict[str, str], output_dir: Path) -> Iterator[dict[str, Any]]:
    env = own_services
    started: list[Any] = []
    try:
        started.append(WebServer(log_dir=output_dir, **env).start())
        for variable in ("COMMANDS_WORKER_CMD", "IMPORTS_WORKER_CMD"):
            queues, concurrency = run_worker_args(variable)
            started.append(
                Worker(queues, concurrency, log_dir=output_dir, **env).start()
            )
        yield {"web": started[0]}
    finally:
        for process in reversed(started):
            process.stop()


def session_for(user: Any) -> requests.Session:
    from api.tokens import issue_token

    session = requests.Session()
    session.headers["Authorization"] = f"Token {issue_token(user)}"
    return session


def post(session: requests.Session, url: str, name: str, body: Any) -> str:
    response = session.post(f"{url}/api/commands/{name}/", json=body, timeout=60)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def database_dsn() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def row(command_id: str) -> tuple[str, int]:
    with psycopg.connect(database_dsn()) as conn:
        found = conn.execute(
            "SELECT status, progress FROM commands WHERE id = %s", (command_id,)
        ).fetchone()
    assert found is not None
    return str(found[0]), int(found[1] or 0)


def order_seconds(session: requests.Session, url: str, product: str) -> float:
    """Place an order; return the seconds from the POST to its final status."""
    started = time.monotonic()
    body = {
        "lines": [{"product_id": product, "quantity": 1}],
        "shipping_address": ADDRESS,
    }
    command_id = post(session, url, "place-order", body)
    status = wait_until(
        lambda: row(command_id)[0] in FINAL and row(command_id)[0],
        timeout=60,
        interval=0.01,
    )
    assert status == "succeeded"
    return time.monotonic() - started


def bulk(n: int) -> list[dict[str, Any]]:
    return [
        {"sku": f"BULK-{n}-{i}", "name": "Bulk", "price_cents": 5, "initial_stock": 1}
        for i in range(IMPORT_SIZE)
    ]


def test_an_order_placed_during_a_50000_product_import_finishes_in_its_usual_time(
    system: dict[str, Any],
) -> None:
    url = system["web"].url
    staff = session_for(make_user("isolation-staff", staff=True))
    customer = session_for(make_user("isolation-customer"))
    product_id = post(
        staff,
        url,
        "register-product",
        {"sku": "ISO-1", "name": "Mug", "price_cents": 900, "initial_stock": 100},
    )
    wait_until(lambda: row(product_id)[0] == "succeeded", timeout=30)
    product = staff.get(f"{url}/api/commands/{product_id}/", timeout=10).json()[
        "aggregate_id"
    ]

    order_seconds(customer, url, product)  # warm up
    usual = statistics.median(order_seconds(customer, url, product) for _ in range(5))

    imports = [
        post(staff, url, "import-products", {"products": bulk(n)}) for n in range(2)
    ]
    wait_until(
        lambda: any(status == "running" for status, _ in map(row, imports)),
        timeout=120,
        interval=0.05,
    )
    during = [order_seconds(customer, url, product) for _ in range(3)]
    still = [row(i)[0] for i in imports]
    print(f"usual {usual:.3f}s, during imports {during}, imports {still}")
    assert "running" in still, "the imports ended before the orders: no overlap"
    for seconds in during:
        assert seconds <= 3 * usual + 1.0, (usual, during)
