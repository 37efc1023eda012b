"""Connection budgets: how many PostgreSQL and Redis connections each process holds.

PostgreSQL refuses connections past `max_connections` (100 by default, three of
them reserved for superusers). The web tier runs Django views in a thread pool
(config/asgi.py): with persistent connections (`CONN_MAX_AGE`) each of its
threads kept one connection per database, 2 x 32 per web process, so `make
run`'s two web processes alone could ask for 128. The web tier instead borrows
from a psycopg pool per process and database (`WEB_DB_POOL_MAX_SIZE`), waiting
up to `WEB_DB_POOL_TIMEOUT` seconds when it is empty (or the server is down);
a Celery worker process runs one task at a time and keeps one persistent
connection per database.
docs/operations.md shows the formula; tests/reliability/test_connection_budget.py
checks that `make run`'s layout fits.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

# Both databases live on one server (DATABASE_URL, READ_DATABASE_URL); on two
# servers each gets its half, and read replicas only the web pools
# (docs/operations.md, "Several servers").
DATABASES = 2
# Connections a Celery main process (not its pool children) may open per
# database: the Django fixup and signal handlers run there too.
PER_CELERY_MAIN_PROCESS = 1
# The projection rebuild (admin: the imports worker's maintenance queue) reads
# the write database from one thread of its own.
REBUILD_READER_THREADS = 1
# A command worker's effects relay (commands_app/relay.py), in its main process:
# the LISTEN connection, Django's connection in the relay thread, and the
# simulated gateway's ledger connection (commands_app/payments.py).
RELAY_CONNECTIONS = 3
# A projection process parks dead letters on a read connection of its own
# (projections/dead_letters.py, LetterBox), committed apart from the round.
LETTER_BOX_CONNECTIONS = 1


def use_web_connection_pool() -> None:
    """Make this (web) process borrow database connections from a psycopg pool.

    Called by config/asgi.py before Django opens any connection. Django's pool
    needs CONN_MAX_AGE = 0: a connection goes back to the pool at the end of
    each request instead of staying with its thread. Checkouts are checked
    (CONN_HEALTH_CHECKS), and a chain of reconnection attempts gives up after
    WEB_DB_POOL_RECONNECT_SECONDS so that the next request starts a new one
    instead of waiting behind a long backoff.
    """
    for database in settings.DATABASES.values():
        database["CONN_MAX_AGE"] = 0
        database.setdefault("OPTIONS", {})["pool"] = {
            "min_size": settings.WEB_DB_POOL_MIN_SIZE,
            "max_size": settings.WEB_DB_POOL_MAX_SIZE,
            "timeout": settings.WEB_DB_POOL_TIMEOUT,
            "max_idle": 300,
            # After a PostgreSQL restart, never back off for long (checkouts
            # are checked already: CONN_HEALTH_CHECKS).
            "reconnect_timeout": settings.WEB_DB_POOL_RECONNECT_SECONDS,
        }


@dataclass(frozen=True)
class Layout:
    """The processes of one deployment (`make run`: 2, 2, 1, 1, 1)."""

    web_processes: int
    command_worker_concurrency: int
    projection_worker_concurrency: int
    imports_worker_concurrency: int = 1
    beats: int = 1


def postgres_connections(layout: Layout) -> dict[str, int]:
    """Return the most PostgreSQL connections each kind of process may hold."""
    web = layout.web_processes * DATABASES * settings.WEB_DB_POOL_MAX_SIZE
    commands = (
        DATABASES * (layout.command_worker_concurrency + PER_CELERY_MAIN_PROCESS)
        + RELAY_CONNECTIONS
    )
    projections = (
        DATABASES * (layout.projection_worker_concurrency + PER_CELERY_MAIN_PROCESS)
        + LETTER_BOX_CONNECTIONS * layout.projection_worker_concurrency
    )
    imports = (
        DATABASES * (layout.imports_worker_concurrency + PER_CELERY_MAIN_PROCESS)
        + REBUILD_READER_THREADS
    )
    beat = layout.beats * DATABASES
    return {
        "web": web,
        "command worker": commands,
        "projection worker": projections,
        "imports worker": imports,
        "beat": beat,
        "total": web + commands + projections + imports + beat,
    }


def redis_connections_per_web_process() -> dict[str, int]:
    """Return the most Redis connections one web process may hold, per pool."""
    threads = (
        settings.WEB_THREADS
        + settings.COMMAND_MAX_CONCURRENT_WAITS
        + settings.READ_MAX_CONCURRENT_WAITS
    )
    pools = {
        # The sockets' event loop and the push loop (commands_app/push/layer.py).
        "channel layer": 2 * settings.CHANNEL_LAYER_MAX_CONNECTIONS,
        "websocket slots": settings.WS_SLOT_POOL_MAX_CONNECTIONS,
        "cache and throttle": settings.CACHE_MAX_CONNECTIONS,
        "celery broker": settings.CELERY_BROKER_POOL_LIMIT,
        # Clients used from view threads (wake-ups, heartbeats, health): at most
        # one connection per thread each, and there are three of them.
        "single clients": 3 * threads,
    }
    pools["total"] = sum(pools.values())
    return pools
