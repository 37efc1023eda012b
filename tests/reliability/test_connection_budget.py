"""PostgreSQL connections: `make run`'s layout fits the server's default 100.

The formula (config/connections.py, docs/operations.md) is checked against the
Makefile's processes, and the web tier's bound against a real two-worker web
server under more concurrent requests than its pools hold.
"""

from __future__ import annotations

import concurrent.futures
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests
from django.conf import settings

from commands_app.tokens import issue_token
from config.connections import DATABASES, Layout, postgres_connections
from tests.support.processes import ROOT, WebServer

pytestmark = [pytest.mark.e2e]

# PostgreSQL's defaults: max_connections, of which superuser_reserved_connections.
DEFAULT_MAX_CONNECTIONS = 100
SUPERUSER_RESERVED = 3
# Left for what `make run` does not start: migrations, psql, a test process.
HEADROOM = 20


def make_run_layout() -> Layout:
    """Read the processes' sizes from the Makefile's `make run` commands."""
    makefile = (ROOT / "Makefile").read_text()

    def option(variable: str, flag: str) -> int:
        line = re.search(rf"^{variable}\s*:=(.*)$", makefile, re.MULTILINE)
        assert line, variable
        value = re.search(rf"{flag} (\d+)", line.group(1))
        assert value, (variable, flag)
        return int(value.group(1))

    return Layout(
        web_processes=option("WEB_CMD", "--workers"),
        command_worker_concurrency=option("COMMANDS_WORKER_CMD", "-c"),
        projection_worker_concurrency=option("PROJECTIONS_WORKER_CMD", "-c"),
        imports_worker_concurrency=option("IMPORTS_WORKER_CMD", "-c"),
        beats=1,
    )


def test_make_run_fits_postgresql_default_max_connections():
    budget = postgres_connections(make_run_layout())
    assert budget["total"] + HEADROOM <= DEFAULT_MAX_CONNECTIONS - SUPERUSER_RESERVED, (
        budget
    )


@pytest.fixture
def web2(output_dir: Path) -> Iterator[WebServer]:
    server = WebServer(log_dir=output_dir)
    server.workers = 2
    server.start()
    yield server
    server.stop()


def postgres_connections_of(server: WebServer) -> int:
    assert server.process is not None
    port = int(settings.DATABASES["default"]["PORT"] or 5432)
    root = psutil.Process(server.process.pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        total += sum(1 for c in connections if c.raddr and c.raddr.port == port)
    return total


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_the_web_tier_holds_no_more_connections_than_its_pools(web2, alice):
    token = f"Token {issue_token(alice)}"
    peak = 0
    stopping = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stopping.is_set():
            peak = max(peak, postgres_connections_of(web2))
            stopping.wait(0.02)

    def read(i: int) -> int:
        path = ("/api/products/", "/api/orders/")[i % 2]
        response = requests.get(
            f"{web2.url}{path}", headers={"Authorization": token}, timeout=60
        )
        return response.status_code

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        # More requests at once than both processes have threads.
        with concurrent.futures.ThreadPoolExecutor(96) as pool:
            statuses = list(pool.map(read, range(1500)))
    finally:
        stopping.set()
        sampler.join(timeout=5)
    assert set(statuses) == {200}
    bound = web2.workers * DATABASES * settings.WEB_DB_POOL_MAX_SIZE
    print(f"web PostgreSQL connections: at most {peak} (pools: {bound})")
    assert 0 < peak <= bound
