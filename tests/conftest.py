"""Fixtures over the real services: PostgreSQL, Redis, Celery workers, the web server.

Every test module declares its tier (unit, integration or e2e) in its
`pytestmark`; tests/support/tiers.py has the rules, checked here at collection.
A run that selects only unit tests (`make test-fast`) touches neither Redis nor
PostgreSQL: the services are prepared only when a selected test needs them, and
a unit test that reaches Redis or PostgreSQL fails.

Tests that need committed data (anything a worker process must see) use
`pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import redis.asyncio.connection
import redis.connection
from django.conf import settings
from django.db import OperationalError
from django.db.backends.postgresql.operations import DatabaseOperations
from rest_framework.test import APIClient

from api.tokens import issue_token
from tests.support import rabbitmq, tiers
from tests.support.processes import WebServer, Worker
from tests.support.servers import pg_primary, pg_standby, redis_servers

# Extra real servers (a second cluster, a hot standby, two Redis): see the module.
__all__ = ["pg_primary", "pg_standby", "redis_servers"]

OUTPUT = Path(__file__).resolve().parent.parent / "test-output"


def _flush_retrying_deadlocks(
    operations: Any, sql_list: list[str], attempts: int = 5
) -> None:
    """Flush the test database, again when PostgreSQL aborts it for a deadlock.

    A worker process of an earlier test (its relays are woken by every commit)
    may still be writing while a transactional test's teardown truncates every
    table; PostgreSQL then aborts one of the two. When it is the flush, the
    flush is simply run again: nothing of the test's outcome depends on it.
    """
    for attempt in range(attempts):
        try:
            _flush(operations, sql_list)
            return
        except OperationalError as exc:
            deadlock = isinstance(exc.__cause__, psycopg.errors.DeadlockDetected)
            if not deadlock or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


_flush = DatabaseOperations.execute_sql_flush
DatabaseOperations.execute_sql_flush = _flush_retrying_deadlocks  # type: ignore[method-assign,assignment]
# Whether a selected test is above the unit tier (set once collection is done).
NEEDS_SERVICES = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Refuse to run unless every collected module follows the tier rules.

    It runs before `-m` deselects anything, so that a module without a tier
    fails `make test-fast` as well as `make test`.
    """
    errors = tiers.collection_errors(items)
    if errors:
        raise pytest.UsageError(
            "test tier rules broken (tests/support/tiers.py):\n  " + "\n  ".join(errors)
        )


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[NEEDS_SERVICES] = any(
        item.get_closest_marker("unit") is None for item in session.items
    )


def needs_services(config: pytest.Config) -> bool:
    return config.stash.get(NEEDS_SERVICES, True)


def _refuse_connection(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError(
        "a unit test reached Redis or PostgreSQL: mark its module integration"
    )


@pytest.fixture(autouse=True)
def _unit_tests_reach_no_service(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Make any Redis or PostgreSQL connection from a unit test fail at once.

    pytest-django already refuses the ORM to tests without `django_db`; this
    covers Redis (the cache, the broker, the channel layer) and raw psycopg.
    """
    if request.node.get_closest_marker("unit") is None:
        return
    monkeypatch.setattr(
        redis.connection.AbstractConnection, "connect", _refuse_connection
    )
    monkeypatch.setattr(
        redis.asyncio.connection.AbstractConnection, "connect", _refuse_connection
    )
    monkeypatch.setattr(psycopg.Connection, "connect", _refuse_connection)
    monkeypatch.setattr(psycopg, "connect", _refuse_connection)


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT


@pytest.fixture(autouse=True)
def _gateway_lets_go_of_the_database() -> Iterator[None]:
    """Close the simulated gateway's connection of this thread after each test.

    It would otherwise stay open to the end of the run, and the test
    database could not be dropped ("being accessed by other users").
    """
    yield
    from commands_app.payments import SimulatedGateway

    SimulatedGateway.close_connection()


@pytest.fixture(scope="session", autouse=True)
def _clean_redis(request: pytest.FixtureRequest) -> None:
    """Start from an empty broker and channel layer (a test-only Redis database).

    Skipped when only unit tests run: they use no Redis.
    """
    if needs_services(request.config):
        redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture(scope="session", autouse=True)
def _broker_vhost(request: pytest.FixtureRequest) -> Iterator[None]:
    """On RabbitMQ, create the run's own virtual host (named in its URL), drop it after.

    `make test` runs the broker-sensitive tests a second time with
    CELERY_BROKER_URL=amqp://.../<a vhost of that run>; its queues start empty.
    Skipped when only unit tests run.
    """
    url = str(settings.CELERY_BROKER_URL)
    if not needs_services(request.config) or not rabbitmq.is_rabbitmq(url):
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
