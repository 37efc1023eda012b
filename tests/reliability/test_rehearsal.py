"""A multi-host rehearsal: the system laid out as separate hosts run it, here.

Every tier is a process (or server) of its own, as on separate hosts, and they
meet only over the network (loopback ports here):

- web: two ASGI servers on two ports (`make run`'s command, one process each);
- workers: two command workers, the imports worker, two projection workers, beat;
- PostgreSQL: a write server (the event store and commands) and a read server
  (the read models), each a cluster of its own;
- RabbitMQ as the Celery broker (a virtual host of the run's own);
- two Redis: one for the cache, throttles and socket slots, one for the
  channel layer (the pushes).

A burst of a couple of thousand commands (orders, payments, cancellations and
an import) goes through both web ports while every customer listens on a
WebSocket of the *other* web server, so that every push crosses hosts through
the channel layer. Mid-burst one worker of each kind is SIGKILLed (the imports
worker mid-import; an orchestrator starts another). Then the store and money
invariants of `reconcile()` must hold (nothing lost, nothing doubled, the
gateway's ledger equal to the events, the read models equal to a rebuild) and
every command's outcome must have been pushed to its user's socket or be
recoverable by resync (`GET /api/commands/<id>/`), as docs/api.md tells clients.

docs/operations.md ("Tested layouts") describes this layout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest
import requests
from websockets.asyncio.client import connect

from tests.reliability.reconcile import reconcile
from tests.reliability.services import (
    DB_NAME,
    READ_DB_NAME,
    Beat,
    Stack,
)
from tests.support import rabbitmq
from tests.support.commands import ADDRESS, GOOD_CARD
from tests.support.processes import WebServer, Worker, wait_until
from tests.support.servers import (
    PostgresServer,
    RedisServer,
    hot_standby,
    postgres_cluster,
    redis_server,
)

# About a minute and a half on a quiet machine; the bound leaves room for a busy one.
pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.timeout(900)]

# The burst's size: `make test` runs a couple of thousand commands.
COMMANDS = int(os.environ.get("REHEARSAL_COMMANDS", "2000"))
CUSTOMERS = 16
PRODUCTS = 20
IMPORT_ITEMS = 2000
THREADS = 16
# A POST reset on a kept-alive connection is sent again, same key (Burst.send).
SEND_ATTEMPTS = 3
FINAL = {"succeeded", "rejected", "failed"}
RABBITMQ_URL = os.environ.get(
    "RABBITMQ_TEST_URL", "amqp://guest:guest@127.0.0.1:5672"
).rstrip("/")


@dataclass
class Hosts(Stack):
    """The rehearsal's layout: every tier on servers and processes of its own."""

    read_pg: PostgresServer | None = None
    replica: PostgresServer | None = None
    layer_redis: RedisServer | None = None
    webs: list[WebServer] = field(default_factory=list)
    workers: dict[str, list[Worker]] = field(default_factory=dict)
    polls: threading.local = field(default_factory=threading.local)
    poll_connections: list[psycopg.Connection[Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def dsn(self) -> str:
        return str(self.env["DATABASE_URL"])

    @property
    def read_dsn(self) -> str:
        return str(self.env["READ_DATABASE_URL"])

    @property
    def url(self) -> str:
        return self.webs[0].url

    def start_worker(self, kind: str, queues: str, concurrency: int) -> Worker:
        process = Worker(
            queues=queues, concurrency=concurrency, log_dir=self.log_dir, **self.env
        ).start()
        self.workers.setdefault(kind, []).append(process)
        return process

    def poll(self, sql: str, params: list[Any]) -> tuple[Any, ...] | None:
        """Return the first row of `sql` (write server), on this thread's connection.

        The burst's threads poll every 10-100 ms; a connection opened per poll
        forked a PostgreSQL backend each time, and those forks took much of
        the two cores that the layout under test needs.
        """
        db = getattr(self.polls, "db", None)
        if db is None:
            db = self.polls.db = psycopg.connect(self.dsn, autocommit=True)
            with self.lock:
                self.poll_connections.append(db)
        return db.execute(sql, params).fetchone()

    def alive(self, kind: str) -> list[Worker]:
        return [
            w
            for w in self.workers.get(kind, [])
            if w.process is not None and w.process.poll() is None
        ]

    def processes(self) -> list[Any]:
        workers = [w for kind in self.workers.values() for w in kind]
        return [*workers, self.beat, *self.webs]

    def stop(self) -> None:
        super().stop()
        for db in self.poll_connections:
            db.close()


@contextlib.contextmanager
def started_hosts(log_dir: Path) -> Iterator[Hosts]:
    """Start the servers (tests/support/servers.py), migrate, then every process."""
    with contextlib.ExitStack() as servers:
        write_pg = servers.enter_context(postgres_cluster())
        read_pg = servers.enter_context(postgres_cluster())
        cache_redis = servers.enter_context(redis_server())
        layer_redis = servers.enter_context(redis_server())
        write_pg.create_database(DB_NAME)
        read_pg.create_database(READ_DB_NAME)
        # The read API's replica: a hot standby of the read server.
        replica = servers.enter_context(hot_standby(read_pg))
        broker = rabbitmq.with_vhost(
            RABBITMQ_URL, f"cqrs-rehearsal-{socket.gethostname()}-{os.getpid()}"
        )
        rabbitmq.add_vhost(broker)
        servers.callback(rabbitmq.delete_vhost, broker)
        env = {
            "DATABASE_URL": write_pg.url(DB_NAME),
            "READ_DATABASE_URL": read_pg.url(READ_DB_NAME),
            "READ_REPLICA_URLS": replica.url(READ_DB_NAME),
            "REDIS_URL": cache_redis.url(),
            "CACHE_URL": cache_redis.url(),
            "CHANNEL_LAYER_URLS": layer_redis.url(),
            "CELERY_BROKER_URL": broker,
            "COMMAND_LEASE_SECONDS": "4",
            "COMMAND_REDRIVE_AFTER_SECONDS": "1",
            "SWEEP_INTERVAL_SECONDS": "1",
            "PROJECTION_SAFETY_NET_SECONDS": "1",
            "COMMAND_THROTTLE_RATE": "100000/min",
            "DB_CONNECT_TIMEOUT": "2",
            "IMPORT_CHUNK_SIZE": "100",
            "PAYMENT_GATEWAY_LATENCY_MS": "20",
        }
        # reconcile() reaches the servers only through dsn, read_dsn and
        # redis.client() (the cache Redis: its keys are searched for card numbers).
        hosts = Hosts(
            pg=cast(Any, write_pg),
            redis=cast(Any, cache_redis),
            log_dir=log_dir,
            env=env,
            read_pg=read_pg,
            replica=replica,
            layer_redis=layer_redis,
        )
        servers.callback(hosts.stop)
        hosts.prepare(
            [("staff", True)] + [(f"customer{i}", False) for i in range(CUSTOMERS)]
        )
        # Every process starts at once, as hosts would.
        with ThreadPoolExecutor(8) as pool:
            webs = [
                pool.submit(lambda: WebServer(log_dir=log_dir, **env).start())
                for _ in range(2)
            ]
            layout = [
                ("commands", "commands", 2),
                ("commands", "commands", 2),
                ("imports", "imports,maintenance", 1),
                ("projections", "projections", 1),
                ("projections", "projections", 1),
            ]
            workers = [pool.submit(hosts.start_worker, *each) for each in layout]
            beat = pool.submit(lambda: Beat(log_dir, **env).start())
            # Keep whatever started, so that the teardown stops it on a failure.
            hosts.webs = [web.result() for web in webs if web.exception() is None]
            if beat.exception() is None:
                hosts.beat = beat.result()
            futures: list[Future[Any]] = [*webs, *workers, beat]
            for future in futures:
                future.result()
        yield hosts


@pytest.fixture
def hosts(output_dir: Path) -> Iterator[Hosts]:
    log_dir = output_dir / "rehearsal"
    log_dir.mkdir(exist_ok=True)
    for old in log_dir.glob("*.log"):
        old.unlink()
    with started_hosts(log_dir) as started:
        yield started


# --- Listening: one WebSocket per customer, on the other web server -------------


class Listeners:
    """Every customer's socket in an event loop of its own thread; keep all pushes."""

    def __init__(self, urls: dict[str, str], tokens: dict[str, str]) -> None:
        self.urls = urls
        self.tokens = tokens
        self.heard: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.loop = asyncio.new_event_loop()
        self.stopping: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        try:
            self.loop.run_until_complete(self.main())
        except BaseException as exc:  # reported by stop()
            self.error = exc
            self.ready.set()

    async def main(self) -> None:
        self.stopping = asyncio.Event()
        sockets = await asyncio.gather(
            *(
                connect(
                    url,
                    proxy=None,
                    additional_headers={"Authorization": f"Token {self.tokens[who]}"},
                    open_timeout=60,
                    ping_interval=None,
                    max_queue=None,
                )
                for who, url in self.urls.items()
            )
        )
        self.ready.set()
        readers = [
            asyncio.create_task(self.read(who, ws))
            for who, ws in zip(self.urls, sockets, strict=True)
        ]
        await self.stopping.wait()
        for task in readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

    async def read(self, who: str, ws: Any) -> None:
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "command.status":
                self.heard[who].append(message)

    def __enter__(self) -> Listeners:
        self.thread.start()
        if not self.ready.wait(timeout=90):
            raise AssertionError("the sockets did not open")
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        if self.stopping is not None:
            self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(timeout=30)


# --- The burst -------------------------------------------------------------------


@dataclass
class Sent:
    who: str
    name: str
    web: int
    status: int
    command_id: str | None
    body: Any
    after: str | None = None


@dataclass
class Burst:
    hosts: Hosts
    sent: list[Sent] = field(default_factory=list)
    by_key: dict[str, Sent] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: threading.local = field(default_factory=threading.local)

    def session(self, who: str) -> requests.Session:
        cache = self.sessions.__dict__.setdefault("by_user", {})
        if who not in cache:
            cache[who] = self.hosts.session(who)
        return cache[who]

    def send(self, web: int, who: str, name: str, body: dict[str, Any]) -> Sent:
        """POST a command as a careful client does: with an Idempotency-Key.

        A kept-alive connection that the server closes as idle (uvicorn, after
        5 s) while the request is on its way is reset; the client cannot know
        if the command was accepted, so it sends it again with the same key on
        a new connection (docs/api.md), and gets the same command if it was.
        """
        url = f"{self.hosts.webs[web].url}/api/commands/{name}/"
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        for _attempt in range(SEND_ATTEMPTS):
            try:
                response = self.session(who).post(
                    url, json=body, headers=headers, timeout=60
                )
                payload: Any = response.json()
                status = response.status_code
                break
            except requests.ConnectionError as exc:
                payload, status = repr(exc), 0
                self.sessions.by_user.pop(who, None)  # a new connection
            except (requests.RequestException, ValueError) as exc:
                payload, status = repr(exc), 0
                break
        command_id = payload.get("id") if status == 202 else None
        sent = Sent(who, name, web, status, command_id, payload)
        with self.lock:
            self.sent.append(sent)
        return sent

    def accepted(self) -> set[str]:
        with self.lock:
            return {s.command_id for s in self.sent if s.command_id}

    def run(self, job: Job, web: int) -> Sent:
        """Send a job, once the command it follows is final (if it was accepted)."""
        if job.after is not None:
            wait_until(lambda: job.after in self.by_key, timeout=120, interval=0.05)
            before = self.by_key[job.after]
            if before.command_id is not None:
                wait_until(
                    lambda: command_row(self.hosts, str(before.command_id))[0] in FINAL,
                    timeout=180,
                    interval=0.1,
                )
        sent = self.send(web, job.who, job.name, job.body)
        sent.after = job.after
        with self.lock:
            self.by_key[job.key] = sent
        return sent


@dataclass
class Job:
    key: str
    who: str
    name: str
    body: dict[str, Any]
    # The key of an earlier job whose command must be final first (as a client
    # pays for an order once it saw it placed).
    after: str | None = None


def plan(products: list[str], count: int) -> list[Job]:
    """Orders, then payments and cancellations of orders placed a while earlier.

    Products run short (some orders are refused for stock); a cancellation of a
    paid order refunds it: each path of the money invariant is taken.
    """
    jobs: list[Job] = []
    orders: list[tuple[str, str]] = []
    customers = itertools.cycle([f"customer{i}" for i in range(CUSTOMERS)])
    while len(jobs) < count:
        who = next(customers)
        order_id = str(uuid.uuid4())
        orders.append((who, order_id))
        line = {"product_id": products[len(orders) % len(products)], "quantity": 1}
        body = {"order_id": order_id, "lines": [line], "shipping_address": ADDRESS}
        jobs.append(Job(f"place {order_id}", who, "place-order", body))
        # Pay every third order 60 orders later; cancel every ninth (paid) one
        # 60 orders after that.
        earlier = len(orders) - 60
        if earlier >= 0 and earlier % 3 == 0:
            payer, paid = orders[earlier]
            jobs.append(
                Job(
                    f"pay {paid}",
                    payer,
                    "pay-order",
                    {"order_id": paid, "card": GOOD_CARD},
                    after=f"place {paid}",
                )
            )
        late = len(orders) - 120
        if late >= 0 and late % 9 == 0:
            canceller, cancelled = orders[late]
            jobs.append(
                Job(
                    f"cancel {cancelled}",
                    canceller,
                    "cancel-order",
                    {"order_id": cancelled},
                    after=f"pay {cancelled}",
                )
            )
    return jobs[:count]


def not_placed(hosts: Hosts, burst: Burst, sent: Sent) -> bool:
    """Tell whether the order a refused job named was never placed."""
    key = sent.after
    while key is not None and key.startswith("pay "):
        key = burst.by_key[key].after
    if key is None:
        return False
    place = burst.by_key[key]
    return place.command_id is None or (
        command_row(hosts, place.command_id)[0] == "rejected"
    )


def command_row(hosts: Hosts, command_id: str) -> tuple[str, int]:
    row = hosts.poll(
        "SELECT status, progress FROM commands WHERE id = %s", [command_id]
    )
    assert row is not None
    return str(row[0]), int(row[1])


def running(hosts: Hosts) -> int:
    row = hosts.poll("SELECT count(*) FROM commands WHERE status = 'running'", [])
    return int(row[0]) if row else 0


def kill(worker: Worker) -> None:
    """SIGKILL a worker host: its main process and its pool at once."""
    assert worker.process is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait(timeout=10)


def register_products(hosts: Hosts, burst: Burst, stock: int) -> list[str]:
    ids = []
    for i in range(PRODUCTS):
        sku = f"RH-{i:03d}-{uuid.uuid4().hex[:6]}"
        sent = burst.send(
            i % 2,
            "staff",
            "register-product",
            {"sku": sku, "name": sku, "price_cents": 1500, "initial_stock": stock},
        )
        assert sent.status == 202, sent
        ids.append(str(sent.command_id))
    products = []
    for command_id in ids:
        status = final(hosts, "staff", command_id)
        assert status["status"] == "succeeded", status
        products.append(str(status["aggregate_id"]))
    return products


def final(hosts: Hosts, who: str, command_id: str, web: int = 0) -> dict[str, Any]:
    session = hosts.session(who)
    url = f"{hosts.webs[web].url}/api/commands/{command_id}/"

    def done() -> dict[str, Any] | None:
        with contextlib.suppress(requests.RequestException, ValueError):
            body = session.get(url, timeout=10).json()
            return body if body.get("status") in FINAL else None
        return None

    return dict(wait_until(done, timeout=90, interval=0.1))


# --- The test --------------------------------------------------------------------


def test_a_multi_host_layout_survives_a_burst_with_one_of_each_worker_killed(
    hosts: Hosts,
) -> None:
    started = time.monotonic()
    burst = Burst(hosts)
    # Stock for about nine orders in ten: the rest are refused.
    orders = sum(1 for job in plan(["x"], COMMANDS) if job.name == "place-order")
    stock = max(1, orders * 9 // 10 // PRODUCTS)
    jobs = plan(register_products(hosts, burst, stock=stock), COMMANDS)
    customers = [f"customer{i}" for i in range(CUSTOMERS)]
    # Customer i listens on web i % 2 and sends through the other one.
    listen_on = {who: i % 2 for i, who in enumerate(customers)}
    ws_urls = {
        who: hosts.webs[web].url.replace("http://", "ws://") + "/ws/commands/"
        for who, web in listen_on.items()
    }
    with Listeners(ws_urls, hosts.tokens) as listeners:
        with ThreadPoolExecutor(THREADS) as pool:
            futures = [
                pool.submit(burst.run, job, 1 - listen_on[job.who]) for job in jobs
            ]
            killed = kill_one_of_each(hosts, burst, len(jobs), started)
            answers = [future.result() for future in futures]
        sent_at = time.monotonic() - started
        refused = [a for a in answers if a.status != 202]
        # Only a payment or cancellation of an order that was never placed
        # (refused for stock): 404, ownership is checked on the write model.
        assert all(a.status == 404 and not_placed(hosts, burst, a) for a in refused), (
            Counter((a.name, a.status, str(a.body)[:120]) for a in refused)
        )
        counts = reconcile(hosts, accepted=burst.accepted(), settle_seconds=120)
        check_import(hosts, killed)
        # The pushes of the last commands (and their `projected`) are in flight.
        time.sleep(3)
    reconciled_at = time.monotonic() - started
    # The killed workers died mid-work; the layout survived them.
    assert len(hosts.alive("commands")) == 1
    assert len(hosts.alive("projections")) == 1
    report = {
        "commands": len(answers),
        "refused_404": len(refused),
        **check_outcomes(hosts),
        "store": counts,
        "pushes": check_pushes(hosts, burst, listeners, customers),
        "replica": check_replica(hosts),
        "killed": killed,
        "burst_sent_s": round(sent_at, 1),
        "reconciled_s": round(reconciled_at, 1),
    }
    print(json.dumps(report))


def kill_one_of_each(
    hosts: Hosts, burst: Burst, jobs: int, started: float
) -> dict[str, Any]:
    """Mid-burst, SIGKILL a command worker, a projection worker, the imports worker.

    A third of the commands are in and some are running; an import starts and
    its worker dies part-way. The imports tier has one host: like an
    orchestrator, start another; the other tiers carry on with the survivors.
    """
    killed: dict[str, Any] = {}
    wait_until(
        lambda: len(burst.sent) >= jobs // 3 and running(hosts) > 0,
        timeout=120,
        interval=0.02,
    )
    kill(hosts.workers["commands"][0])
    killed["commands_at_s"] = round(time.monotonic() - started, 1)
    kill(hosts.workers["projections"][0])
    killed["projections_at_s"] = round(time.monotonic() - started, 1)
    items = [
        {
            "sku": f"RH-IMP-{i:05d}",
            "name": f"Imported {i}",
            "price_cents": 99,
            "initial_stock": 1,
        }
        for i in range(IMPORT_ITEMS)
    ]
    imported = burst.send(1, "staff", "import-products", {"products": items})
    assert imported.status == 202, imported
    killed["import_id"] = import_id = str(imported.command_id)
    wait_until(lambda: command_row(hosts, import_id)[1] > 0, timeout=120, interval=0.01)
    killed["import_progress"] = command_row(hosts, import_id)[1]
    kill(hosts.workers["imports"][0])
    killed["imports_at_s"] = round(time.monotonic() - started, 1)
    hosts.start_worker("imports", "imports,maintenance", 1)
    return killed


def check_import(hosts: Hosts, killed: dict[str, Any]) -> None:
    """The import killed part-way was resumed by the new worker, once, and whole."""
    assert 0 < killed["import_progress"] < 100
    status = final(hosts, "staff", killed["import_id"], web=1)
    assert status["status"] == "succeeded", status
    assert status["result"] == {"imported": IMPORT_ITEMS, "skipped": 0}
    with psycopg.connect(hosts.dsn) as db:
        attempt = db.execute(
            "SELECT attempt FROM commands WHERE id = %s", [killed["import_id"]]
        ).fetchone()
    assert attempt == (2,), attempt


def check_outcomes(hosts: Hosts) -> dict[str, Any]:
    """Every path was taken: orders won and refused, payments, refunds.

    reconcile() checked the money; this says there was money to check.
    """
    with psycopg.connect(hosts.dsn) as db:
        ledger = {
            str(kind): int(n)
            for kind, n in db.execute(
                "SELECT kind, count(*) FROM gateway_ledger "
                "WHERE outcome = 'succeeded' GROUP BY kind"
            )
        }
        outcomes = {
            f"{kind} {status}": int(n)
            for kind, status, n in db.execute(
                "SELECT type, status, count(*) FROM commands GROUP BY 1, 2"
            )
        }
    assert outcomes.get("place-order succeeded", 0) > 0, outcomes
    assert outcomes.get("place-order rejected", 0) > 0, outcomes  # stock ran out
    assert outcomes.get("pay-order succeeded", 0) > 0, outcomes
    assert ledger.get("charge", 0) > 0, ledger
    return {"outcomes": outcomes, "gateway": ledger}


def check_pushes(
    hosts: Hosts, burst: Burst, listeners: Listeners, customers: list[str]
) -> dict[str, int]:
    """Every outcome was pushed to its user, or a resync gives it; none leaked."""
    owner = {s.command_id: s.who for s in burst.sent if s.command_id}
    heard_final: dict[str, dict[str, Any]] = {}
    for who in customers:
        for message in listeners.heard[who]:
            command = message["command"]
            # Nobody hears another user's commands.
            assert owner.get(command["id"], who) == who, (who, command["id"])
            if command["status"] in FINAL:
                best = heard_final.get(command["id"])
                if best is None or message["seq"] > best["seq"]:
                    heard_final[command["id"]] = message
    mine = [cid for cid, who in owner.items() if who in customers]
    delivered = [cid for cid in mine if cid in heard_final]
    missed = [cid for cid in mine if cid not in heard_final]
    # What a client does when it missed a push: ask the status endpoint.
    resynced: Counter[str] = Counter()
    for cid in missed:
        body = final(hosts, owner[cid], cid, web=1)
        resynced[body["status"]] += 1
    # A push that was heard says what the store says.
    with psycopg.connect(hosts.dsn) as db:
        store = {
            str(cid): status
            for cid, status in db.execute(
                "SELECT id, status FROM commands WHERE id = ANY(%s::uuid[])",
                [delivered],
            )
        }
    wrong = {
        cid: (heard_final[cid]["command"]["status"], store.get(cid))
        for cid in delivered
        if heard_final[cid]["command"]["status"] != store.get(cid)
    }
    assert not wrong, list(wrong.items())[:5]
    # The channel layer carries most pushes: a listener that heard almost
    # nothing would make "recoverable by resync" vacuous.
    assert len(delivered) >= len(mine) * 3 // 4, (len(delivered), len(mine))
    return {
        "customer_commands": len(mine),
        "final_pushed": len(delivered),
        "resynced": sum(resynced.values()),
    }


def check_replica(hosts: Hosts) -> dict[str, int]:
    """The replica holds the read server's rows; reads through it answer the head."""
    assert hosts.replica is not None
    assert hosts.read_pg is not None
    hosts.replica.wait_for_replay(hosts.read_pg, timeout=60)
    tables = [
        row[0]
        for row in hosts.read_pg.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename LIKE 'read%%' ORDER BY 1",
            dbname=READ_DB_NAME,
        )
    ]
    for table in tables:
        digest = (
            f"SELECT count(*), md5(coalesce(string_agg(t::text, ',' "
            f"ORDER BY t::text), '')) FROM {table} t"
        )
        primary = hosts.read_pg.execute(digest, dbname=READ_DB_NAME)
        assert hosts.replica.execute(digest, dbname=READ_DB_NAME) == primary, table
    with psycopg.connect(hosts.dsn) as db:
        row = db.execute("SELECT max(position) FROM events").fetchone()
    head = int(row[0]) if row and row[0] is not None else 0
    for web in hosts.webs:
        response = hosts.session("customer0").get(
            f"{web.url}/api/orders/", params={"min_position": head}, timeout=30
        )
        assert response.status_code == 200, response.text
    return {"tables": len(tables), "head": head}
