"""GET /metrics: who may scrape, what it exposes, and that it moves with commands.

The last tests run the real web server and Celery worker, which share the
session's PROMETHEUS_MULTIPROC_DIR (tests/conftest.py): the web's scrape adds up
what every process counted.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from typing import Any

import pytest
import requests
from kombu import Connection, Exchange, Queue
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from api.tokens import issue_token
from commands_app import sweeper
from commands_app.models import CommandRecord
from observability.metrics import (
    QueueDepthCollector,
    is_allowed,
    prune_dead_processes,
)
from tests.support.processes import wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

FAMILIES = {
    "cqrs_commands",
    "cqrs_command_latency_seconds",
    "cqrs_command_run_seconds",
    "cqrs_events_appended",
    "cqrs_projection_lag_events",
    "cqrs_projection_lag_seconds",
    "cqrs_projection_dead_letters",
    "cqrs_queue_depth",
    "cqrs_sweeper_redrives",
    "cqrs_websocket_connections",
    "cqrs_pushes",
}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def scrape(web: Any) -> str:
    response = requests.get(f"{web.url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return response.text


@pytest.mark.parametrize(
    ("addr", "auth", "allowed"),
    [
        ("127.0.0.1", None, True),
        ("::1", None, True),
        ("10.0.3.7", None, True),
        ("10.1.0.1", None, False),
        ("10.1.0.1", "Bearer s3cret", True),
        ("10.1.0.1", "Bearer wrong", False),
        (None, None, False),
        ("not-an-ip", None, False),
    ],
)
def test_only_allowed_networks_or_the_token_may_scrape(
    addr: str | None, auth: str | None, allowed: bool
) -> None:
    assert (
        is_allowed(
            addr, auth, allowed=["127.0.0.1", "::1", "10.0.3.0/24"], token="s3cret"
        )
        is allowed
    )


def test_metrics_from_elsewhere_than_loopback_are_not_found(client, settings) -> None:
    settings.METRICS_TOKEN = "t0ken"
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1").status_code == 404
    with_token = client.get(
        "/metrics", REMOTE_ADDR="192.0.2.1", HTTP_AUTHORIZATION="Bearer t0ken"
    )
    assert with_token.status_code == 200


def test_a_scrape_reports_every_projection_and_queue(client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    for projection in ("product_catalogue", "order_summary", "daily_sales"):
        assert (
            "cqrs_projection_lag_events",
            frozenset({("projection", projection)}),
        ) in samples(text)
    for queue in ("commands", "imports", "projections"):
        assert ("cqrs_queue_depth", frozenset({("queue", queue)})) in samples(text)
    assert value(text, "cqrs_scrape_error", collector="projections") == 0
    assert value(text, "cqrs_scrape_error", collector="queues") == 0


def test_a_failing_collector_is_reported_not_a_500(client, settings) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert value(text, "cqrs_scrape_error", collector="queues") == 1
    assert value(text, "cqrs_scrape_error", collector="projections") == 0


def test_the_queue_depth_counts_the_messages_waiting_on_either_broker(
    settings,
) -> None:
    """Redis: LLEN; RabbitMQ: a passive declare's message count (make test-rabbitmq)."""
    url = str(settings.CELERY_BROKER_URL)
    name = f"depth-probe-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, Exchange(name, "direct"), routing_key=name)
    with Connection(url) as connection:
        producer = connection.Producer()
        for _ in range(3):
            producer.publish(
                {"n": 1}, exchange=queue.exchange, routing_key=name, declare=[queue]
            )
        expected = {name: 3, f"{name}-never-declared": 0}
        collector = QueueDepthCollector(url, list(expected))
        try:
            # RabbitMQ enqueues a publish sent without confirms a moment
            # later: the collector's own connection may see it after a while.
            deadline = time.monotonic() + 10
            while True:
                depths = {
                    sample.labels["queue"]: sample.value
                    for family in collector.collect()
                    for sample in family.samples
                }
                if depths == expected or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        finally:
            queue(connection.default_channel).delete()
    assert depths == expected


def test_the_sweeper_counts_its_re_drives(alice, monkeypatch) -> None:
    monkeypatch.setattr(sweeper, "enqueue", lambda record: None)
    before = REGISTRY.get_sample_value("cqrs_sweeper_redrives_total") or 0.0
    CommandRecord.objects.create(
        type="cancel-order",
        user=alice,
        payload={"order_id": "5f0c6f9e-1c1d-4a57-9e51-3b2c1d0e9f7a"},
        request_hash="x",
        enqueued_at="2000-01-01T00:00:00Z",
    )
    assert sweeper.sweep() == 1
    after = REGISTRY.get_sample_value("cqrs_sweeper_redrives_total")
    assert after == before + 1


def test_metrics_move_while_commands_flow_through_the_real_worker(
    web, worker, staff
) -> None:
    headers = {"Authorization": f"Token {issue_token(staff)}"}
    before = scrape(web)
    ids = []
    for index in range(3):
        response = requests.post(
            f"{web.url}/api/commands/register-product/",
            json={
                "sku": f"METRIC-{index}",
                "name": "Metric mug",
                "price_cents": 900,
                "initial_stock": 5,
            },
            headers=headers,
            timeout=10,
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    wait_until(
        lambda: (
            CommandRecord.objects.filter(pk__in=ids, status="succeeded").count() == 3
        )
    )

    def settled() -> str | None:
        text = scrape(web)
        done = (
            value(text, "cqrs_pushes_total", type="command.status", outcome="sent")
            >= value(before, "cqrs_pushes_total", type="command.status", outcome="sent")
            + 9
        )
        lag = value(text, "cqrs_projection_lag_events", projection="product_catalogue")
        return text if done and lag == 0 else None

    after = wait_until(settled, timeout=20, interval=0.2)
    # A labelled family appears once a process has counted one of its labels.
    assert {f.name for f in text_string_to_metric_families(after)} >= FAMILIES
    kind = {"type": "register-product"}
    for status in ("accepted", "succeeded"):
        moved = value(after, "cqrs_commands_total", **kind, status=status) - value(
            before, "cqrs_commands_total", **kind, status=status
        )
        assert moved == 3, status
    for name in (
        "cqrs_command_latency_seconds_count",
        "cqrs_command_run_seconds_count",
    ):
        labels = {**kind, "status": "succeeded"}
        assert value(after, name, **labels) - value(before, name, **labels) == 3
    appended = {"type": "product.registered.v1"}
    assert (
        value(after, "cqrs_events_appended_total", **appended)
        - value(before, "cqrs_events_appended_total", **appended)
        == 3
    )
    assert value(after, "cqrs_queue_depth", queue="commands") == 0


def test_open_websockets_are_counted_by_the_web_processes(web, alice) -> None:
    url = web.url.replace("http://", "ws://") + "/ws/commands/"
    headers = {"Authorization": f"Token {issue_token(alice)}"}
    base = value(scrape(web), "cqrs_websocket_connections")
    with connect(url, proxy=None, additional_headers=headers):
        opened = wait_until(
            lambda: value(scrape(web), "cqrs_websocket_connections") == base + 1
        )
        assert opened
    deadline = time.monotonic() + 10
    while value(scrape(web), "cqrs_websocket_connections") != base:
        assert time.monotonic() < deadline, "the closed socket is still counted"
        time.sleep(0.1)


def test_a_scrape_forgets_the_live_gauges_of_processes_gone(tmp_path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    mine = tmp_path / f"gauge_livesum_{os.getpid()}.db"
    dead = tmp_path / f"gauge_livesum_{gone.pid}.db"
    counter = tmp_path / f"counter_{gone.pid}.db"
    for path in (mine, dead, counter):
        path.touch()
    prune_dead_processes(str(tmp_path))
    assert mine.exists()
    assert counter.exists()
    assert not dead.exists()
