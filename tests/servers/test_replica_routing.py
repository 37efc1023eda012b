"""Settings, router and channel layer of several servers, without the whole stack."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest
from django.contrib.auth.models import User
from django.db import router
from django.test import override_settings

from config.channel_layer import BlockingPoolChannelLayer
from config.settings.base import channel_layer_host
from projections.models import OrderSummary
from queries_app import replicas
from tests.support import processes
from tests.support.servers import RedisServer

SETTINGS_SCRIPT = """
import json
from django.conf import settings
print(json.dumps({
    "aliases": settings.READ_REPLICA_ALIASES,
    "replicas": {a: [settings.DATABASES[a][k] for k in ("HOST", "PORT", "NAME")]
                 for a in settings.READ_REPLICA_ALIASES},
    "mirror": settings.DATABASES["read_replica_0"]["TEST"],
    "options": settings.DATABASES["read_replica_0"]["OPTIONS"]
        == settings.DATABASES["read"]["OPTIONS"],
    "hosts": [host["address"]
              for host in settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]],
    "cache": settings.CACHES["default"]["LOCATION"],
}))
"""


@pytest.mark.parametrize("module", ["config.settings.base", "config.settings.test"])
def test_each_replica_url_becomes_an_alias_and_each_redis_url_a_shard(
    module: str,
) -> None:
    env = processes.test_env(
        DJANGO_SETTINGS_MODULE=module,
        READ_REPLICA_URLS=(
            "postgres://postgres@replica-a:5433/cqrs_orders_read_test,"
            "postgres://postgres@replica-b:5434/cqrs_orders_read_test"
        ),
        CHANNEL_LAYER_URLS="redis://shard-a:6379/0,redis://shard-b:6380/0",
        CACHE_URL="redis://cache:6381/2",
    )
    out = subprocess.run(
        [str(processes.BIN / "python"), "manage.py", "shell", "-c", SETTINGS_SCRIPT],
        cwd=processes.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["aliases"] == ["read_replica_0", "read_replica_1"]
    assert found["replicas"] == {
        "read_replica_0": ["replica-a", 5433, "cqrs_orders_read_test"],
        "read_replica_1": ["replica-b", 5434, "cqrs_orders_read_test"],
    }
    assert found["mirror"]["MIRROR"] == "read"
    assert found["options"] is True
    assert found["hosts"] == ["redis://shard-a:6379/0", "redis://shard-b:6380/0"]
    assert found["cache"] == "redis://cache:6381/2"


def test_a_pinned_request_reads_its_replica_and_everything_writes_the_primary() -> None:
    assert router.db_for_read(OrderSummary) == "read"
    with replicas.pinned("read_replica_0") as alias:
        assert alias == "read_replica_0"
        assert router.db_for_read(OrderSummary) == "read_replica_0"
        assert router.db_for_write(OrderSummary) == "read"
        assert router.db_for_read(User) in (None, "default")
        replicas.use(replicas.PRIMARY)
        assert router.db_for_read(OrderSummary) == "read"
    assert replicas.pinned_alias() is None
    assert router.db_for_read(OrderSummary) == "read"


def test_replicas_are_never_migrated_and_a_failed_one_is_left_out() -> None:
    aliases = ["read_replica_0", "read_replica_1"]
    with override_settings(READ_REPLICA_ALIASES=aliases, READ_REPLICA_RETRY_SECONDS=60):
        assert not router.allow_migrate("read_replica_0", "projections")
        assert router.allow_migrate("read", "projections")
        try:
            assert {replicas.choose() for _ in range(200)} == set(aliases)
            replicas.mark_failed("read_replica_0")
            assert {replicas.choose() for _ in range(50)} == {"read_replica_1"}
            replicas.mark_failed("read_replica_1")
            assert replicas.choose() == replicas.PRIMARY
        finally:
            replicas.forget_failures()
    assert replicas.choose() == replicas.PRIMARY


@pytest.mark.servers
def test_the_channel_layer_shards_groups_and_channels_over_two_redis_servers(
    redis_servers: list[RedisServer],
) -> None:
    layer = BlockingPoolChannelLayer(
        hosts=[channel_layer_host(server.url()) for server in redis_servers],
        prefix="shard-test",
        expiry=30,
    )

    def keys() -> list[int]:
        return [len(list(s.client().scan_iter("shard-test*"))) for s in redis_servers]

    async def exchange() -> tuple[list[int], list[int]]:
        channels = [await layer.new_channel() for _ in range(16)]
        for index, channel in enumerate(channels):
            await layer.group_add(f"user.{index}", channel)
        for index in range(len(channels)):
            await layer.group_send(f"user.{index}", {"type": "x", "index": index})
        held = keys()
        got = [(await layer.receive(channel))["index"] for channel in channels]
        await layer.flush()
        await layer.close_pools()
        return got, held

    for server in redis_servers:
        server.client().flushall()
    received, held = asyncio.run(exchange())
    assert received == list(range(16))
    # Both servers held some of the groups and messages.
    assert all(count > 0 for count in held), held
