"""The command throttle: a fixed-window counter per user in Redis."""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache
from redis import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError

from commands_app.models import CommandRecord
from commands_app.throttling import hit, shared_cache
from tests.conftest import client_for
from tests.support.commands import ADDRESS
from tests.support.processes import free_port
from throttles import HIT_SCRIPT, ScriptCall, _hit_script

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]

ORDER_BODY = {
    "lines": [{"product_id": "00000000-0000-4000-8000-000000000001", "quantity": 1}],
    "shipping_address": ADDRESS,
}


@pytest.fixture
def fresh_key(alice: Any) -> Any:
    key = f"throttle_commands_{alice.pk}"
    cache.delete(key)
    yield key
    cache.delete(key)


def redis_cache() -> RedisCache:
    backend = shared_cache()
    assert isinstance(backend, RedisCache)
    return backend


def redis_of(key: str) -> tuple[Any, str]:
    backend = redis_cache()
    raw_key = backend.make_and_validate_key(key)
    return backend._cache.get_client(raw_key, write=True), raw_key  # type: ignore[attr-defined]


def test_a_window_counts_requests_and_expires_with_its_period(fresh_key):
    counts = [hit(redis_cache(), fresh_key, 60) for _ in range(3)]
    assert [count for count, _ in counts] == [1, 2, 3]
    assert all(0 < ttl <= 60 for _, ttl in counts)
    client, raw_key = redis_of(fresh_key)
    assert 0 < client.ttl(raw_key) <= 60


def test_a_refusal_says_how_long_the_window_has_left(alice, fresh_key, settings):
    settings.COMMAND_THROTTLE_RATE = "2/hour"
    api = client_for(alice)
    answers = [
        api.post("/api/commands/place-order/", ORDER_BODY, format="json")
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert answers[-1].json()["code"] == "throttled"
    assert 3500 < int(answers[-1]["Retry-After"]) <= 3600
    assert CommandRecord.objects.count() == 2
    client, raw_key = redis_of(fresh_key)
    assert int(client.get(raw_key)) == 3  # the window's counter, refusals included


def test_a_new_window_opens_when_the_last_one_has_expired(alice, fresh_key, settings):
    settings.COMMAND_THROTTLE_RATE = "1/min"
    api = client_for(alice)
    first = api.post("/api/commands/place-order/", ORDER_BODY, format="json")
    assert first.status_code == 202
    client, raw_key = redis_of(fresh_key)
    client.delete(raw_key)  # as Redis does when the window's expiry passes
    again = api.post("/api/commands/place-order/", ORDER_BODY, format="json")
    assert again.status_code == 202


def test_a_value_left_by_the_previous_throttle_starts_a_window(alice, fresh_key):
    # DRF's throttle kept a pickled list of timestamps under the same key.
    client, raw_key = redis_of(fresh_key)
    client.set(raw_key, pickle.dumps([1.0, 2.0]), ex=60)
    assert hit(redis_cache(), fresh_key, 60)[0] == 1
    assert hit(redis_cache(), fresh_key, 60)[0] == 2


def test_the_throttle_lets_requests_through_when_redis_is_down(
    alice, fresh_key, monkeypatch
):
    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("redis is down")

    monkeypatch.setattr("commands_app.throttling.hit", unreachable)
    response = client_for(alice).post(
        "/api/commands/place-order/", ORDER_BODY, format="json"
    )
    assert response.status_code == 202


# The script's call on the throttle's own connections (throttles.ScriptCall).


def script_call() -> ScriptCall:
    return _hit_script(redis_cache())


def test_a_script_that_redis_forgot_is_sent_again(fresh_key):
    client, _raw_key = redis_of(fresh_key)
    assert hit(redis_cache(), fresh_key, 60)[0] == 1
    client.script_flush()  # as a restart of Redis forgets it
    assert client.script_exists(script_call().sha) == [False]
    assert hit(redis_cache(), fresh_key, 60)[0] == 2
    assert client.script_exists(script_call().sha) == [True]
    assert hit(redis_cache(), fresh_key, 60)[0] == 3


def test_a_connection_that_redis_closed_is_replaced_and_the_hit_counted(fresh_key):
    client, _raw_key = redis_of(fresh_key)
    hit(redis_cache(), fresh_key, 60)
    calls = script_call()
    idle = calls.idle[-1]
    idle.send_command("CLIENT", "ID")
    killed = client.client_kill_filter(_id=idle.read_response())
    assert killed == 1
    assert hit(redis_cache(), fresh_key, 60)[0] == 2
    assert idle not in calls.idle
    assert len(calls.idle) >= 1


def test_an_unreachable_redis_raises_and_keeps_no_connection():
    pool = ConnectionPool(host="127.0.0.1", port=free_port(), socket_timeout=1)
    calls = ScriptCall(pool, HIT_SCRIPT)
    with pytest.raises(RedisConnectionError):
        calls(["throttle_unreachable"], [60])
    assert calls.idle == []


def test_threads_sharing_the_connections_count_every_hit_once(fresh_key):
    def hits() -> list[int]:
        return [hit(redis_cache(), fresh_key, 60)[0] for _ in range(50)]

    with ThreadPoolExecutor(8) as pool:
        counts = [c for batch in pool.map(lambda _: hits(), range(8)) for c in batch]
    assert sorted(counts) == list(range(1, 401))
    assert len(script_call().idle) <= 8  # one per thread at most
