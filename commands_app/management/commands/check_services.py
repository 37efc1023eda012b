"""Check that PostgreSQL and Redis answer, and create the databases when asked.

Django's own connections are not used: the configured databases may not exist yet.
Every probe has a short timeout, so the command answers within seconds and never
hangs; a failure is reported in one line that says how to start the service.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry

PG_CONNECT_TIMEOUT_SECONDS = 3
PG_STATEMENT_TIMEOUT_MS = 15_000
REDIS_TIMEOUT_SECONDS = 2
MAINTENANCE_DB = "postgres"
# libpq parameters that may appear in a database's OPTIONS; Django-only keys
# (pool, isolation_level, server_side_binding, ...) are left out.
LIBPQ_OPTIONS = frozenset(
    {
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslpassword",
        "passfile",
        "service",
        "target_session_attrs",
        "application_name",
    }
)


class ServiceUnavailableError(Exception):
    """A service did not answer; the message is the one line shown to the user."""


@dataclass(frozen=True)
class PostgresServer:
    """Where a configured database lives, and how to log in to that server."""

    host: str
    port: str
    user: str
    password: str
    options: tuple[tuple[str, str], ...]

    @classmethod
    def from_settings(cls, database: dict[str, Any]) -> PostgresServer:
        options = database.get("OPTIONS") or {}
        return cls(
            host=str(database.get("HOST") or ""),
            port=str(database.get("PORT") or "5432"),
            user=str(database.get("USER") or ""),
            password=str(database.get("PASSWORD") or ""),
            options=tuple(
                sorted((k, str(v)) for k, v in options.items() if k in LIBPQ_OPTIONS)
            ),
        )

    @property
    def address(self) -> str:
        if not self.host or self.host.startswith("/"):
            return f"the local socket {self.host or '(default)'}, port {self.port}"
        return f"{self.host}:{self.port}"

    def connect(self) -> psycopg.Connection[Any]:
        """Open an autocommit connection to the server's maintenance database."""
        params: dict[str, Any] = dict(self.options)
        params.update(
            dbname=MAINTENANCE_DB,
            connect_timeout=PG_CONNECT_TIMEOUT_SECONDS,
            options=f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS}",
            autocommit=True,
        )
        for key, value in (
            ("host", self.host),
            ("port", self.port),
            ("user", self.user),
            ("password", self.password),
        ):
            if value:
                params[key] = value
        return psycopg.connect(**params)


def postgres_start_hint() -> str:
    """Say how PostgreSQL is started on this machine, or with Docker Compose."""
    clusters = Path("/etc/postgresql")
    versions = (
        sorted(
            (p.name for p in clusters.iterdir() if p.name.isdigit()),
            key=int,
        )
        if clusters.is_dir()
        else []
    )
    if versions:
        local = f"pg_ctlcluster --skip-systemctl-redirect {versions[-1]} main start"
        return f'start it with "{local}" or "docker compose up -d postgres"'
    return 'start it (for example "docker compose up -d postgres")'


def redis_start_hint() -> str:
    """Say how Redis is started on this machine, or with Docker Compose."""
    return (
        'start it with "redis-server --daemonize yes --bind 127.0.0.1 --port 6379" '
        'or "docker compose up -d redis"'
    )


def tcp_reachable(host: str, port: int, timeout: float) -> bool:
    """Tell whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def one_line(error: BaseException) -> str:
    """Squeeze an error message onto one line."""
    text = " ".join(str(error).split())
    return text or type(error).__name__


def check_postgres(server: PostgresServer) -> None:
    """Connect to the server's maintenance database, or raise with a one-line hint."""
    is_tcp = bool(server.host) and not server.host.startswith("/")
    if is_tcp and not tcp_reachable(
        server.host, int(server.port), PG_CONNECT_TIMEOUT_SECONDS
    ):
        raise ServiceUnavailableError(
            f"PostgreSQL is not reachable at {server.address}: {postgres_start_hint()}"
        )
    try:
        with server.connect() as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        if is_tcp:
            raise ServiceUnavailableError(
                f"PostgreSQL at {server.address} refused the connection: "
                f"{one_line(error)}"
            ) from error
        raise ServiceUnavailableError(
            f"PostgreSQL is not reachable at {server.address} ({one_line(error)}): "
            f"{postgres_start_hint()}"
        ) from error


def create_database_if_missing(server: PostgresServer, name: str) -> bool:
    """Create the database unless it exists; tell whether it was created."""
    with server.connect() as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if exists:
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            # Another process created it between the check and the CREATE.
            return False
    return True


def redis_address(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"


def check_redis(url: str) -> None:
    """Ping Redis at url, or raise with a one-line hint."""
    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError) as error:
        raise ServiceUnavailableError(
            f"Redis is not reachable at {redis_address(url)}: {redis_start_hint()}"
        ) from error
    except redis.RedisError as error:
        raise ServiceUnavailableError(
            f"Redis at {redis_address(url)} refused the connection: {one_line(error)}"
        ) from error
    finally:
        client.close()


def rabbitmq_address(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 5672}"


def check_rabbitmq(url: str) -> None:
    """Open an AMQP connection to the broker at url, or raise with a one-line hint."""
    from kombu import Connection

    address = rabbitmq_address(url)
    try:
        with Connection(url, connect_timeout=REDIS_TIMEOUT_SECONDS) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as error:
        raise ServiceUnavailableError(
            f"RabbitMQ (CELERY_BROKER_URL) is not reachable at {address}: "
            f"{one_line(error)}"
        ) from error


class Command(BaseCommand):
    help = (
        "Check that PostgreSQL, Redis and a RabbitMQ broker (if one) are reachable "
        "(exit 1 with a one-line hint if not); with --create-databases, create the "
        "configured databases."
    )
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--create-databases",
            action="store_true",
            help="Create the 'default' and 'read' databases when they are missing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self.check_all(
                create=options["create_databases"], verbose=options["verbosity"] >= 1
            )
        except ServiceUnavailableError as error:
            self.stderr.write(str(error))
            raise SystemExit(1) from error

    def check_all(self, *, create: bool, verbose: bool) -> None:
        databases = {
            alias: settings.DATABASES[alias]
            for alias in ("default", "read")
            if alias in settings.DATABASES
        }
        servers = {
            alias: PostgresServer.from_settings(db) for alias, db in databases.items()
        }
        for server in dict.fromkeys(servers.values()):
            check_postgres(server)
        # The cache and the channel layer's shards may be Redis servers of their own.
        redis_urls = [
            settings.REDIS_URL,
            str(getattr(settings, "CACHE_URL", settings.REDIS_URL)),
            *(str(url) for url in getattr(settings, "CHANNEL_LAYER_URLS", ())),
        ]
        broker = getattr(settings, "CELERY_BROKER_URL", None)
        if broker and str(broker).startswith(("redis://", "rediss://", "unix://")):
            redis_urls.append(str(broker))
        for url in dict.fromkeys(redis_urls):
            check_redis(url)
        rabbitmq = ""
        if broker and str(broker).startswith(("amqp://", "amqps://", "pyamqp://")):
            check_rabbitmq(str(broker))
            rabbitmq = f" and RabbitMQ ({rabbitmq_address(str(broker))})"
        if create:
            for alias, db in databases.items():
                self.create_database(servers[alias], str(db["NAME"]))
        if verbose:
            names = ", ".join(str(db["NAME"]) for db in databases.values())
            self.stdout.write(
                f"PostgreSQL ({names}) and Redis "
                f"({', '.join(dict.fromkeys(redis_address(u) for u in redis_urls))})"
                f"{rabbitmq} are reachable."
            )

    def create_database(self, server: PostgresServer, name: str) -> None:
        try:
            created = create_database_if_missing(server, name)
        except psycopg.Error as error:
            raise ServiceUnavailableError(
                f"Could not create database {name!r} at {server.address}: "
                f"{one_line(error)}"
            ) from error
        if created:
            self.stdout.write(f"Created database {name!r} at {server.address}.")
