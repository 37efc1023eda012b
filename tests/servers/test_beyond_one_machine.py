"""The system spread over several servers, all real, all started here.

- the write database on one PostgreSQL cluster, the read database on another;
- a hot standby of the read database (pg_basebackup -R), read by the web tier
  through READ_REPLICA_URLS;
- the channel layer sharded over two Redis servers (CHANNEL_LAYER_URLS), the
  cache and rate limits on a third (CACHE_URL), the broker on a fourth.

The web server, both workers and beat run as processes over them. The tests
check that the gap-safe reader, the consistency token, a rebuild and the
reconcile check all hold, that reads come from the replica, and that a read
with `min_position` on a lagging replica (replay paused) falls back to the
primary and still shows the write.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from websockets.sync.client import connect

from tests.reliability.driver import Driver
from tests.reliability.reconcile import reconcile
from tests.reliability.services import Stack
from tests.support.processes import wait_until
from tests.support.spread import SpreadStack, spread_stack

pytestmark = [pytest.mark.servers, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def servers_stack(output_dir: Path) -> Iterator[SpreadStack]:
    with spread_stack(output_dir / "servers") as stack:
        yield stack


@pytest.fixture
def driver(servers_stack: SpreadStack) -> Driver:
    return Driver(servers_stack)


def get(stack: Stack, who: str, path: str, **params: Any) -> requests.Response:
    return stack.session(who).get(f"{stack.url}{path}", params=params, timeout=30)


def placed(driver: Driver, who: str, product_id: str) -> dict[str, Any]:
    answer = driver.place_order(who, product_id)
    assert answer.command_id is not None, answer
    status = driver.final(who, answer.command_id)
    assert status["status"] == "succeeded", status
    return status


def checkpoints(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as db:
        return dict(db.execute("SELECT name, position FROM read_checkpoints"))


def test_the_databases_live_on_two_servers_and_the_standby_replicates(
    servers_stack: SpreadStack,
) -> None:
    stack = servers_stack
    assert stack.read_pg is not None
    assert stack.standby is not None
    assert stack.pg.port != stack.read_pg.port
    with psycopg.connect(stack.dsn) as db:
        assert db.execute("SELECT to_regclass('events')").fetchone() == ("events",)
        assert db.execute("SELECT to_regclass('read_checkpoints')").fetchone() == (
            None,
        )
    with psycopg.connect(stack.read_dsn) as db:
        assert db.execute("SELECT to_regclass('events')").fetchone() == (None,)
    with psycopg.connect(stack.replica_dsn) as db:
        assert db.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)


def test_read_your_writes_across_servers_through_the_replica(
    servers_stack: SpreadStack, driver: Driver
) -> None:
    stack = servers_stack
    assert stack.standby is not None
    assert stack.read_pg is not None
    product_id = driver.register_product(stock=50)
    for who in ("customer0", "customer1", "customer2"):
        status = placed(driver, who, product_id)
        order_id, position = status["aggregate_id"], status["position"]
        response = get(stack, who, f"/api/orders/{order_id}/", min_position=position)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "placed"
        assert int(response.headers["X-Read-Position"]) >= position
        # A position every projection applied is a token for the next read.
        token = response.headers["X-Read-Position"]
        again = get(stack, who, "/api/orders/", min_position=token)
        assert again.status_code == 200, again.text
        assert order_id in {row["id"] for row in again.json()["results"]}


def test_reads_come_from_the_replica_and_a_lagging_one_falls_back_to_the_primary(
    servers_stack: SpreadStack, driver: Driver
) -> None:
    stack = servers_stack
    assert stack.standby is not None
    assert stack.read_pg is not None
    product_id = driver.register_product(stock=50)
    first = placed(driver, "customer3", product_id)
    wait_until(
        lambda: (
            get(
                stack, "customer3", "/api/products/", min_position=first["position"]
            ).status_code
            == 200
        ),
        timeout=30,
    )
    stack.standby.wait_for_replay(stack.read_pg)
    stack.standby.pause_replay()
    try:
        status = placed(driver, "customer3", product_id)
        order_id, position = status["aggregate_id"], status["position"]
        # The primary applies it; the paused replica cannot have it.
        names = ("order_summary", "product_catalogue")
        wait_until(
            lambda: all(
                checkpoints(stack.read_dsn)[name] >= position for name in names
            ),
            timeout=30,
        )
        assert all(checkpoints(stack.replica_dsn)[name] < position for name in names)

        # A plain read is answered by the replica: it does not know the order,
        # and its X-Read-Position is the replica's own checkpoint.
        stale = get(stack, "customer3", f"/api/orders/{order_id}/")
        assert stale.status_code == 404, stale.text
        listing = get(stack, "customer3", "/api/orders/")
        assert listing.status_code == 200
        assert int(listing.headers["X-Read-Position"]) < position
        assert order_id not in {row["id"] for row in listing.json()["results"]}

        # With min_position the replica waits briefly, then the primary answers.
        started = time.monotonic()
        fresh = get(
            stack, "customer3", f"/api/orders/{order_id}/", min_position=position
        )
        elapsed = time.monotonic() - started
        assert fresh.status_code == 200, fresh.text
        assert fresh.json()["status"] == "placed"
        assert int(fresh.headers["X-Read-Position"]) >= position
        assert elapsed < 5, elapsed
    finally:
        stack.standby.resume_replay()
    stack.standby.wait_for_replay(stack.read_pg)
    caught_up = get(stack, "customer3", f"/api/orders/{order_id}/")
    assert caught_up.status_code == 200, caught_up.text


def test_pushes_cross_two_channel_layer_shards_and_the_cache_has_its_own_redis(
    servers_stack: SpreadStack, driver: Driver
) -> None:
    stack = servers_stack
    product_id = driver.register_product(stock=50)
    url = stack.url.replace("http://", "ws://") + "/ws/commands/"
    customers = [f"customer{i}" for i in range(8)]
    with contextlib.ExitStack() as sockets:
        opened = {
            who: sockets.enter_context(
                connect(
                    url,
                    proxy=None,
                    additional_headers={"Authorization": f"Token {stack.tokens[who]}"},
                    open_timeout=10,
                )
            )
            for who in customers
        }
        # Every user's group lives on one shard; eight users spread over both.
        groups = [list(shard.client().scan_iter("*group*")) for shard in stack.shards]
        assert all(groups), groups
        for who in customers:
            answer = driver.place_order(who, product_id)
            assert answer.command_id is not None, answer
            deadline = time.monotonic() + 30
            while True:
                message = json.loads(opened[who].recv(timeout=30))
                command = message.get("command") or {}
                if (
                    message.get("type") == "command.status"
                    and command.get("id") == answer.command_id
                    and command.get("status") == "succeeded"
                ):
                    break
                assert time.monotonic() < deadline, message
    # The rate limits counted these requests on the cache's Redis, not the broker's.
    assert stack.cache is not None
    assert list(stack.cache.client().scan_iter("*throttle*"))
    assert list(stack.redis.client().scan_iter("*throttle*")) == []


def test_rebuild_and_reconcile_pass_with_the_databases_apart(
    servers_stack: SpreadStack, driver: Driver
) -> None:
    stack = servers_stack
    product_id = driver.register_product(stock=100)
    answers = driver.burst([product_id], 30)
    assert all(answer.status == 202 for answer in answers), answers
    for answer in answers:
        assert answer.command_id is not None
        driver.final(answer.who, answer.command_id)
    stack.manage("rebuild_projections")
    counts = reconcile(stack, accepted=driver.accepted)
    assert counts["events"] >= 30
    # The replica has followed the rebuild's table swap too.
    assert stack.standby is not None
    assert stack.read_pg is not None
    stack.standby.wait_for_replay(stack.read_pg)
    with (
        psycopg.connect(stack.read_dsn) as primary,
        psycopg.connect(stack.replica_dsn) as replica,
    ):
        sql = (
            "SELECT count(*), md5(string_agg(id::text || status || total_cents, ',' "
            "ORDER BY id)) FROM read_orders"
        )
        assert primary.execute(sql).fetchone() == replica.execute(sql).fetchone()


def test_a_stopped_replica_sends_reads_to_the_primary_then_is_left_out(
    servers_stack: SpreadStack, driver: Driver
) -> None:
    stack = servers_stack
    assert stack.standby is not None
    assert stack.read_pg is not None
    product_id = driver.register_product(stock=50)
    status = placed(driver, "customer4", product_id)
    stack.standby.stop()
    try:
        for _ in range(3):
            response = get(
                stack, "customer4", "/api/orders/", min_position=status["position"]
            )
            assert response.status_code == 200, response.text
            ids = {row["id"] for row in response.json()["results"]}
            assert status["aggregate_id"] in ids
        started = time.monotonic()
        for _ in range(5):
            assert get(stack, "customer4", "/api/products/").status_code == 200
        # Left out meanwhile: no request waits for the dead replica again.
        assert time.monotonic() - started < 5
        assert stack.web is not None
        log = stack.web.log_path.read_text(errors="replace")
        assert "read replica read_replica_0 failed" in log
    finally:
        stack.standby.start()
    stack.standby.wait_for_replay(stack.read_pg)
