"""Figure 8, sockets: how many the push holds, and how fast it fans out.

`make run`'s layout (two web workers). SOCKETS sockets (TABS per user) connect
all at once, as after a deploy; then:

- fan-out: one `command.status` per user sent through the channel layer at
  once (as a worker's push does); each socket's delay from the send to its
  arrival, p50 and p99. Baseline: the same fan-out through bare Redis pub/sub
  (one subscription per socket, spread over 100 connections), in the same run;
- commands: one real place-order per user through the workers; the sockets
  that hear their own user's `succeeded` (all must) and the time until all did;
- reconnect storm: every socket's TCP connection dropped at once, then every
  one reconnecting at once; the time until all are open again, and a fan-out
  that all must hear.

    .venv/bin/python bench/run.py --only sockets [--sockets 2000]
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import resource
import time
from typing import Any

import redis.asyncio
import requests
from websockets.asyncio.client import ClientConnection, connect

from . import common
from .common import Row, System
from .context import Context
from .fig_sustained import LAYOUT

TABS = 5
BASELINE_CONNECTIONS = 100


def raise_open_files_limit(sockets: int) -> None:
    """Both ends of every socket live on this host: the server inherits this."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * sockets + 1024
    if soft != resource.RLIM_INFINITY and soft < wanted:
        limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


def make_users(count: int) -> dict[int, str]:
    """Get or create `count` customers with tokens; return {user id: token}."""
    from django.contrib.auth import get_user_model

    from api.tokens import issue_token

    user_model = get_user_model()
    names = [f"bench-ws-{i}" for i in range(count)]
    existing = set(
        user_model.objects.filter(username__in=names).values_list("username", flat=True)
    )
    user_model.objects.bulk_create(
        [user_model(username=n, password="!") for n in names if n not in existing]
    )
    users = list(user_model.objects.filter(username__in=names))
    return {int(u.pk): issue_token(u) for u in users}


class Tab:
    """One socket of one user, and what it heard."""

    def __init__(self, user_id: int, token: str) -> None:
        self.user_id = user_id
        self.token = token
        self.ws: ClientConnection | None = None
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader: asyncio.Task[None] | None = None

    async def open(self, url: str) -> None:
        self.ws = await connect(
            url,
            additional_headers={"Authorization": f"Token {self.token}"},
            open_timeout=120,
            ping_interval=None,
            proxy=None,
        )
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        assert self.ws is not None
        async for raw in self.ws:
            message = json.loads(raw)
            message["_at"] = time.time()
            await self.messages.put(message)

    async def wait_for(self, predicate: Any, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = await asyncio.wait_for(self.messages.get(), left)
            except TimeoutError:
                return None
            if predicate(message):
                return message
        return None

    def drop(self) -> None:
        """Drop the TCP connection without a closing handshake."""
        assert self.ws is not None
        self.ws.transport.abort()
        if self.reader is not None:
            self.reader.cancel()


async def open_all(tabs: list[Tab], url: str) -> tuple[float, int]:
    started = time.perf_counter()
    results = await asyncio.gather(*(t.open(url) for t in tabs), return_exceptions=True)
    seconds = time.perf_counter() - started
    return seconds, sum(1 for r in results if not isinstance(r, BaseException))


async def fan_out(tabs: list[Tab], users: list[int], round_id: int) -> list[float]:
    """Send one status per user through the layer; return each socket's delay (ms)."""
    from channels.layers import get_channel_layer

    from commands_app.push.layer import user_group

    layer = get_channel_layer()
    assert layer is not None
    sent: dict[int, float] = {}

    async def send(user: int) -> None:
        sent[user] = time.time()
        await layer.group_send(
            user_group(user),
            {
                "type": "command.status",
                "seq": round_id,
                "command": {"id": f"round-{round_id}", "user": user},
            },
        )

    await asyncio.gather(*(send(u) for u in users))

    def mine(tab: Tab) -> Any:
        return lambda m: (
            m.get("seq") == round_id and m["command"].get("user") == tab.user_id
        )

    heard = await asyncio.gather(*(t.wait_for(mine(t), 60) for t in tabs))
    return [
        (m["_at"] - sent[t.user_id]) * 1000
        for t, m in zip(tabs, heard, strict=True)
        if m is not None
    ]


async def baseline_fan_out(tabs: list[Tab], users: list[int]) -> list[float]:
    """The same fan-out through bare Redis pub/sub: one subscription per socket."""
    clients = [
        redis.asyncio.Redis.from_url(common.REDIS_URL)
        for _ in range(min(BASELINE_CONNECTIONS, len(tabs)))
    ]
    pubsubs = [c.pubsub() for c in clients]
    # A user's tabs on different connections (a connection hears a channel once).
    subscriptions: dict[int, list[str]] = {}
    for index, tab in enumerate(tabs):
        channel = f"bench-baseline.{tab.user_id}"
        subscriptions.setdefault(index % len(pubsubs), []).append(channel)
    for index, channels in subscriptions.items():
        await pubsubs[index].subscribe(*channels)
    expected = sum(len(set(c)) for c in subscriptions.values())
    delays: list[float] = []

    async def listen(pubsub: Any, count: int) -> None:
        deadline = time.monotonic() + 30
        while count and time.monotonic() < deadline:
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=1
            )
            if message is None:
                continue
            delays.append((time.time() - float(message["data"])) * 1000)
            count -= 1

    listeners = [
        asyncio.create_task(listen(pubsubs[i], len(set(c))))
        for i, c in subscriptions.items()
    ]
    # A pool of the size the channel layer has, that waits rather than fails.
    publisher = redis.asyncio.Redis(
        connection_pool=redis.asyncio.BlockingConnectionPool.from_url(
            common.REDIS_URL, max_connections=50
        )
    )
    await asyncio.gather(
        *(publisher.publish(f"bench-baseline.{u}", repr(time.time())) for u in users)
    )
    await asyncio.gather(*listeners)
    for pubsub, client in zip(pubsubs, clients, strict=True):
        await pubsub.aclose()
        await client.aclose()
    await publisher.aclose()
    assert len(delays) <= expected
    return delays


def place_orders(
    base: str, tokens: dict[int, str], product: str
) -> dict[int, tuple[str, float]]:
    def one(user: int) -> tuple[int, tuple[str, float]]:
        sent = time.time()
        response = requests.post(
            f"{base}/api/commands/place-order/",
            json=common.order_body(product),
            headers={"Authorization": f"Token {tokens[user]}"},
            timeout=120,
        )
        response.raise_for_status()
        return user, (response.json()["id"], sent)

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        return dict(pool.map(one, tokens))


async def scenario(
    system: System, tokens: dict[int, str], product: str
) -> dict[str, Any]:
    url = system.url.replace("http://", "ws://") + "/ws/commands/"
    users = list(tokens)
    tabs = [Tab(u, tokens[u]) for u in users for _ in range(TABS)]
    out: dict[str, Any] = {"sockets": len(tabs)}
    out["open_seconds"], out["opened"] = await open_all(tabs, url)
    live = [t for t in tabs if t.ws is not None]
    await asyncio.sleep(1)
    out["fan_out"] = await fan_out(live, users, 1)
    out["baseline"] = await baseline_fan_out(live, users)

    commands = await asyncio.to_thread(place_orders, system.url, tokens, product)

    def succeeded(tab: Tab) -> Any:
        wanted = commands[tab.user_id][0]
        return lambda m: (
            m["command"].get("id") == wanted
            and m["command"].get("status") == "succeeded"
        )

    heard = await asyncio.gather(*(t.wait_for(succeeded(t), 180) for t in live))
    out["commands_heard"] = sum(1 for m in heard if m is not None)
    out["commands_seconds"] = max(
        (
            m["_at"] - commands[t.user_id][1]
            for t, m in zip(live, heard, strict=True)
            if m
        ),
        default=float("nan"),
    )

    for tab in live:
        tab.drop()
    await asyncio.sleep(0.5)
    for tab in tabs:
        tab.ws = None
        tab.messages = asyncio.Queue()
    out["reconnect_seconds"], out["reopened"] = await open_all(tabs, url)
    live = [t for t in tabs if t.ws is not None]
    await asyncio.sleep(1)
    out["storm_fan_out"] = await fan_out(live, users, 2)
    await asyncio.gather(*(t.ws.close() for t in live if t.ws is not None))
    return out


def run(ctx: Context) -> list[Row]:
    common.reset_state()
    sockets = ctx.sockets
    raise_open_files_limit(sockets)
    tokens = make_users(sockets // TABS)
    (product,) = common.register_products(1)
    with System(*LAYOUT) as system:
        result = asyncio.run(scenario(system, tokens, product))
    common.reset_state()
    p = common.percentile
    n = result["sockets"]
    fan, base, storm = result["fan_out"], result["baseline"], result["storm_fan_out"]
    return [
        Row(
            "9 sockets",
            "sockets open at once",
            result["opened"],
            n,
            "",
            f"{n}",
            result["opened"] == n,
        ),
        Row(
            "9 sockets", f"time to open {n} at once", result["open_seconds"], None, "s"
        ),
        Row(
            "9 sockets",
            "sockets hearing the fan-out",
            len(fan),
            n,
            "",
            f"{n}",
            len(fan) == n,
        ),
        Row(
            "9 sockets",
            "fan-out p50 (baseline: bare Redis pub/sub)",
            p(fan, 50),
            p(base, 50),
            "ms",
        ),
        Row(
            "9 sockets",
            "fan-out p99 (baseline: bare Redis pub/sub)",
            p(fan, 99),
            p(base, 99),
            "ms",
        ),
        Row(
            "9 sockets",
            "sockets hearing their own command succeed",
            result["commands_heard"],
            n,
            "",
            f"{n}",
            result["commands_heard"] == n,
        ),
        Row(
            "9 sockets",
            f"{n // TABS} commands: POST -> last socket heard",
            result["commands_seconds"],
            None,
            "s",
        ),
        Row(
            "9 sockets",
            "reconnect storm: sockets open again",
            result["reopened"],
            n,
            "",
            f"{n}",
            result["reopened"] == n,
        ),
        Row(
            "9 sockets",
            "reconnect storm: time until all open",
            result["reconnect_seconds"],
            None,
            "s",
        ),
        Row(
            "9 sockets",
            "after the storm: sockets hearing the fan-out",
            len(storm),
            n,
            "",
            f"{n}",
            len(storm) == n,
        ),
        Row(
            "9 sockets", "after the storm: fan-out p99", p(storm, 99), p(base, 99), "ms"
        ),
    ]
