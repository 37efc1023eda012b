"""/readyz: every dependency checked, the failing one named, never hanging.

/healthz stays trivial. The probes run against the test databases and Redis;
a dependency "goes down" by pointing its setting at a closed port.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections
from django.db.backends.signals import connection_created
from django.test import Client

from config.health import forget_readiness, run_checks
from tests.support.processes import free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


@pytest.fixture(autouse=True)
def _fresh_answer() -> Iterator[None]:
    """Each test sees its own settings' answer, not one cached by the previous test."""
    forget_readiness()
    yield
    forget_readiness()


def test_healthz_answers_without_checking_anything(client, settings) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_when_databases_redis_workers_and_projections_are(client, worker) -> None:
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert body["failed"] == []
    assert set(body["checks"]) == {
        "database",
        "read_database",
        "redis",
        "workers",
        "projections",
    }
    assert all(body["checks"]["workers"]["live"].values())


def test_redis_down_fails_redis_and_the_worker_heartbeats(client, settings) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert {"redis", "workers"} <= set(body["failed"])
    assert body["checks"]["redis"]["error"] == "ConnectionError"
    assert body["checks"]["database"] == {"ok": True}


@pytest.fixture
def read_database_down() -> Iterator[None]:
    """Point new connections to the read database at a closed port."""
    db = connections.settings["read"]
    port = db["PORT"]
    db["PORT"] = str(free_port())
    try:
        yield
    finally:
        db["PORT"] = port


def test_a_read_database_down_is_named(client, worker, read_database_down) -> None:
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert "read_database" in body["failed"]
    assert body["checks"]["read_database"]["ok"] is False
    assert body["checks"]["database"] == {"ok": True}


def test_a_queue_without_a_live_worker_is_named(client, worker, settings) -> None:
    settings.READY_REQUIRED_QUEUES = ["commands", "nobody-listens"]
    body = client.get("/readyz").json()
    assert body["failed"] == ["workers"]
    assert body["checks"]["workers"]["live"]["nobody-listens"] == 0
    assert "nobody-listens" in body["checks"]["workers"]["error"]


def test_projections_too_far_behind_make_it_unready(
    client, worker, settings, monkeypatch
) -> None:
    import projections.lag

    monkeypatch.setattr(
        projections.lag,
        "projection_lag",
        lambda: [{"name": "order_summary", "lag_events": 11, "lag_seconds": 3.0}],
    )
    settings.READY_MAX_PROJECTION_LAG_EVENTS = 10
    body = client.get("/readyz").json()
    assert body["failed"] == ["projections"]
    assert "order_summary" in body["checks"]["projections"]["error"]


def slow_check() -> dict[str, bool]:
    time.sleep(2)
    return {"ok": True}


def test_a_check_that_hangs_fails_by_timeout_instead_of_hanging_the_probe() -> None:
    started = time.monotonic()
    results = run_checks(
        {"slow": slow_check, "fast": lambda: {"ok": True}},
        timeout=0.2,
    )
    assert time.monotonic() - started < 1
    assert results == {"slow": {"ok": False, "error": "timeout"}, "fast": {"ok": True}}


def test_a_burst_of_200_probes_opens_a_handful_of_database_connections(
    settings,
) -> None:
    settings.READY_CACHE_SECONDS = 5
    opened: list[str] = []
    lock = threading.Lock()

    def count(sender: Any, connection: Any, **kwargs: Any) -> None:
        with lock:
            opened.append(connection.alias)

    statuses: list[int] = []

    def probe_ten_times() -> None:
        client = Client()
        for _ in range(10):
            statuses.append(client.get("/readyz").status_code)

    connection_created.connect(count)
    try:
        threads = [threading.Thread(target=probe_ten_times) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        connection_created.disconnect(count)

    assert len(statuses) == 200
    # One refresh opens four (two per database); allow a second refresh.
    assert len(opened) <= 8, opened


def test_the_answer_is_refreshed_once_it_is_older_than_the_cache_time(
    client, settings
) -> None:
    settings.READY_CACHE_SECONDS = 0.2
    settings.READY_REQUIRED_QUEUES = ["nobody-listens"]
    assert client.get("/readyz").json()["failed"] == ["workers"]
    settings.READY_REQUIRED_QUEUES = []
    assert client.get("/readyz").json()["failed"] == ["workers"]  # cached
    time.sleep(0.3)
    assert "workers" not in client.get("/readyz").json()["failed"]
