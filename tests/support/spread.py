"""The whole system spread over several servers, started on this machine.

`spread_stack(log_dir)` is a context manager that starts, and finally stops and
deletes:

- the write database on one PostgreSQL cluster and the read database on another
  (`tests/support/servers.py`), and a hot standby of the read database that the
  web tier reads through READ_REPLICA_URLS;
- four Redis servers: the broker (REDIS_URL), the cache and rate limits
  (CACHE_URL), and two channel-layer shards (CHANNEL_LAYER_URLS);
- the web server, a command worker, a projection worker and beat over them.

It yields a `SpreadStack`: a `tests.reliability.services.Stack` (so the
reliability `Driver` and `reconcile()` work on it) with `read_pg`, `standby`,
`shards`, `cache` and `replica_dsn` besides. `extra_env` adds or overrides
settings of every process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.reliability.services import Stack
from tests.support.servers import (
    PostgresServer,
    RedisServer,
    hot_standby,
    postgres_cluster,
    redis_server,
)

WRITE_DB = "cqrs_servers_test"
READ_DB = "cqrs_servers_read_test"


@dataclass
class SpreadStack(Stack):
    """A Stack whose read database lives on a server of its own, with a standby."""

    read_pg: PostgresServer | None = None
    standby: PostgresServer | None = None
    shards: tuple[RedisServer, ...] = ()
    cache: RedisServer | None = None

    @property
    def dsn(self) -> str:
        return str(self.pg.url(WRITE_DB))

    @property
    def read_dsn(self) -> str:
        assert self.read_pg is not None
        return self.read_pg.url(READ_DB)

    @property
    def replica_dsn(self) -> str:
        assert self.standby is not None
        return self.standby.url(READ_DB)


@contextlib.contextmanager
def spread_stack(
    log_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[SpreadStack]:
    """Start the system over two PostgreSQL servers, a standby and four Redis."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as resources:
        write = resources.enter_context(postgres_cluster())
        read = resources.enter_context(postgres_cluster())
        write.create_database(WRITE_DB)
        read.create_database(READ_DB)
        standby = resources.enter_context(hot_standby(read))
        broker = resources.enter_context(redis_server())
        cache = resources.enter_context(redis_server())
        shards = (
            resources.enter_context(redis_server()),
            resources.enter_context(redis_server()),
        )
        env = {
            "DATABASE_URL": write.url(WRITE_DB),
            "READ_DATABASE_URL": read.url(READ_DB),
            "READ_REPLICA_URLS": standby.url(READ_DB),
            "READ_REPLICA_MAX_WAIT_SECONDS": "0.2",
            "REDIS_URL": broker.url(),
            "CELERY_BROKER_URL": broker.url(),
            "CACHE_URL": cache.url(),
            "CHANNEL_LAYER_URLS": ",".join(shard.url() for shard in shards),
            "INTEGRATION_EVENTS_BROKER": "redis",
            "COMMAND_LEASE_SECONDS": "4",
            "COMMAND_REDRIVE_AFTER_SECONDS": "1",
            "SWEEP_INTERVAL_SECONDS": "1",
            "PROJECTION_SAFETY_NET_SECONDS": "1",
            "COMMAND_THROTTLE_RATE": "100000/min",
            "DB_CONNECT_TIMEOUT": "2",
            **(extra_env or {}),
        }
        stack = SpreadStack(
            pg=write,  # type: ignore[arg-type]
            redis=broker,  # type: ignore[arg-type]
            log_dir=log_dir,
            env=env,
            read_pg=read,
            standby=standby,
            shards=shards,
            cache=cache,
        )
        resources.callback(stack.stop)
        stack.prepare()
        stack.start_processes()
        yield stack
