"""The server fixtures themselves: a second cluster, its hot standby, two Redis."""

from __future__ import annotations

import pytest

from tests.support.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.servers


def test_a_standby_streams_the_primary_and_lags_while_paused(
    pg_primary: PostgresServer, pg_standby: PostgresServer
) -> None:
    pg_primary.create_database("fixture_check_test")
    pg_primary.execute("CREATE TABLE t (a int)", dbname="fixture_check_test")
    pg_primary.execute("INSERT INTO t VALUES (1)", dbname="fixture_check_test")
    pg_standby.wait_for_replay(pg_primary)
    count = "SELECT count(*) FROM t"
    assert pg_standby.execute(count, dbname="fixture_check_test") == [(1,)]
    assert pg_standby.execute("SELECT pg_is_in_recovery()") == [(True,)]

    pg_standby.pause_replay()
    try:
        pg_primary.execute("INSERT INTO t VALUES (2)", dbname="fixture_check_test")
        assert pg_standby.execute(count, dbname="fixture_check_test") == [(1,)]
    finally:
        pg_standby.resume_replay()
    pg_standby.wait_for_replay(pg_primary)
    assert pg_standby.execute(count, dbname="fixture_check_test") == [(2,)]
    pg_primary.execute('DROP DATABASE "fixture_check_test"')


def test_two_redis_servers_are_apart(redis_servers: list[RedisServer]) -> None:
    first, second = redis_servers
    assert first.port != second.port
    first.client().set("k", "one")
    assert second.client().get("k") is None
