"""Fixtures over the real services: PostgreSQL, Redis, Celery workers, the web server.

Tests that need committed data (anything a worker process must see) use
`pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from rest_framework.test import APIClient

from commands_app.tokens import issue_token
from tests.support import rabbitmq
from tests.support.processes import WebServer, Worker
from tests.support.servers import pg_primary, pg_standby, redis_servers

# Extra real servers (a second cluster, a hot standby, two Redis): see the module.
__all__ = ["pg_primary", "pg_standby", "redis_servers"]

OUTPUT = Path(__file__).resolve().parent.parent / "test-output"


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT


@pytest.fixture(scope="session", autouse=True)
def _clean_redis() -> None:
    """Start from an empty broker and channel layer (a test-only Redis database)."""
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture(scope="session", autouse=True)
def _broker_vhost() -> Iterator[None]:
    """On RabbitMQ, create the run's own virtual host (named in its URL), drop it after.

    `make test` runs the broker-sensitive tests a second time with
    CELERY_BROKER_URL=amqp://.../<a vhost of that run>; its queues start empty.
    """
    url = str(settings.CELERY_BROKER_URL)
    if not rabbitmq.is_rabbitmq(url):
        yield
        return
    rabbitmq.add_vhost(url)
    yield
    rabbitmq.delete_vhost(url)


@pytest.fixture(scope="session", autouse=True)
def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Give the processes tests start one new, empty Prometheus directory.

    Web servers and workers inherit PROMETHEUS_MULTIPROC_DIR (test_env copies
    os.environ), so that a scrape of the web sees the workers' counters too.
    The pytest process itself stays in single-process mode: prometheus-client
    chose its mode when Django imported it, before this fixture ran.
    """
    path = tmp_path_factory.mktemp("prometheus-multiproc")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def worker(
    django_db_setup: Any, django_db_blocker: Any, output_dir: Path
) -> Iterator[Worker]:
    """One real Celery worker process for every queue, shared by the session."""
    process = Worker(log_dir=output_dir).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def web(django_db_setup: Any, output_dir: Path) -> Iterator[WebServer]:
    """The real ASGI server on a free port."""
    server = WebServer(log_dir=output_dir).start()
    yield server
    server.stop()


def make_user(username: str, *, staff: bool = False) -> Any:
    from django.contrib.auth.models import User

    user = User.objects.create_user(
        username, password=f"{username}-pass-123", is_staff=staff
    )
    return user


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user)}")
    return client


@pytest.fixture
def staff(db: Any) -> Any:
    return make_user("staff", staff=True)


@pytest.fixture
def alice(db: Any) -> Any:
    return make_user("alice")


@pytest.fixture
def bob(db: Any) -> Any:
    return make_user("bob")


@pytest.fixture
def staff_api(staff: Any) -> APIClient:
    return client_for(staff)


@pytest.fixture
def alice_api(alice: Any) -> APIClient:
    return client_for(alice)


@pytest.fixture
def bob_api(bob: Any) -> APIClient:
    return client_for(bob)
