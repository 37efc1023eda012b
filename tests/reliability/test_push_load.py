"""The push holds a burst of sockets: 1,000 at once, each hears its own user only.

A correctness test, not a benchmark (bench/fig_sockets.py measures): a web
server with `make run`'s two workers, 200 users with 5 tabs each connecting at
the same moment, then one real command per user through the Celery worker.
Every socket must hear its user's `succeeded`, none another user's, and the
web processes' Redis connections stay within the pools' bounds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import resource
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from django.conf import settings
from django.contrib.auth.models import User
from websockets.asyncio.client import ClientConnection, connect

from api.tokens import issue_token
from config.connections import redis_connections_per_web_process
from tests.support.commands import ADDRESS, register_product
from tests.support.processes import WebServer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.timeout(420),
]

USERS = 200
TABS = 5


def raise_open_files_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


@pytest.fixture
def web2(output_dir: Path) -> Iterator[WebServer]:
    """`make run`'s web layout: two worker processes."""
    # Both ends of every socket are on this host: the server inherits this limit.
    raise_open_files_limit(4 * USERS * TABS + 1024)
    server = WebServer(log_dir=output_dir)
    server.workers = 2
    server.start()
    yield server
    server.stop()


def redis_connections(server: WebServer) -> int:
    """Count the web processes' TCP connections to the Redis port."""
    assert server.process is not None
    port = int(settings.REDIS_URL.split(":")[2].split("/")[0])
    root = psutil.Process(server.process.pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        total += sum(1 for c in connections if c.raddr and c.raddr.port == port)
    return total


class Sampler:
    """Sample the web's Redis connections in a thread; keep the peak."""

    def __init__(self, server: WebServer) -> None:
        self.server = server
        self.peak = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stopping.is_set():
            self.peak = max(self.peak, redis_connections(self.server))
            self.stopping.wait(0.05)

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)


def make_users() -> dict[int, str]:
    """Create the customers and their tokens in bulk; return {user id: token}."""
    users = User.objects.bulk_create(
        [User(username=f"load-{i}", password="!") for i in range(USERS)]
    )
    return {int(user.pk): issue_token(user) for user in users}


async def open_all(url: str, tokens: dict[int, str]) -> list[tuple[int, Any]]:
    async def one(user_id: int, token: str) -> tuple[int, ClientConnection]:
        ws = await connect(
            url,
            proxy=None,
            additional_headers={"Authorization": f"Token {token}"},
            open_timeout=120,
            ping_interval=None,
        )
        return user_id, ws

    return await asyncio.gather(
        *(one(uid, tok) for uid, tok in tokens.items() for _ in range(TABS))
    )


async def heard(ws: ClientConnection, wanted: str) -> set[str]:
    """Read until this socket hears `wanted` succeed; return every id it heard."""
    ids: set[str] = set()
    while True:
        message = json.loads(await ws.recv())
        command = message["command"]
        ids.add(command["id"])
        if command["id"] == wanted and command["status"] == "succeeded":
            return ids


def place_orders(web: WebServer, tokens: dict[int, str], product: str) -> dict:
    def one(user_id: int) -> tuple[int, str]:
        response = requests.post(
            f"{web.url}/api/commands/place-order/",
            json={
                "lines": [{"product_id": product, "quantity": 1}],
                "shipping_address": ADDRESS,
            },
            headers={"Authorization": f"Token {tokens[user_id]}"},
            timeout=60,
        )
        assert response.status_code == 202, response.text
        return user_id, response.json()["id"]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        return dict(pool.map(one, tokens))


def test_a_thousand_sockets_at_once_each_hear_their_own_user_only(
    web2, worker, staff_api
):
    product = register_product(staff_api, stock=USERS * 2)
    tokens = make_users()
    url = web2.url.replace("http://", "ws://") + "/ws/commands/"
    before = redis_connections(web2)

    async def scenario() -> tuple[list[tuple[int, Any]], list[set[str]], dict]:
        sockets = await open_all(url, tokens)
        commands = await asyncio.to_thread(place_orders, web2, tokens, product)
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*(heard(ws, commands[uid]) for uid, ws in sockets)),
                timeout=180,
            )
        finally:
            await asyncio.gather(*(ws.close() for _, ws in sockets))
        return sockets, list(results), commands

    with Sampler(web2) as sampler:
        sockets, results, commands = asyncio.run(scenario())
    time.sleep(1)
    after = redis_connections(web2)

    assert len(sockets) == USERS * TABS
    owner = {command: uid for uid, command in commands.items()}
    for (user_id, _), ids in zip(sockets, results, strict=True):
        assert commands[user_id] in ids
        assert {owner[i] for i in ids if i in owner} == {user_id}
    # The sum of the pools' sizes (config/connections.py), whatever the sockets.
    bound = web2.workers * redis_connections_per_web_process()["total"]
    print(
        f"web Redis connections: {before} before, {sampler.peak} at most, {after} after"
    )
    assert sampler.peak <= bound
    assert after <= bound
