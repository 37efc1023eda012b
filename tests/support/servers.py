"""Extra real servers for tests: a second PostgreSQL cluster, a hot standby, Redis.

Everything runs on this machine, on free ports, in temporary directories that
are deleted on teardown. The machine's own PostgreSQL (5432) and Redis (6379)
are never touched or reconfigured.

Plain context managers (usable from any test, script or fixture):

    with postgres_cluster() as primary:          # initdb + pg_ctl start, ~2-3 s
        primary.url("cqrs_x_test")               # postgres://postgres@127.0.0.1:PORT/...
        primary.create_database("cqrs_x_test")
        primary.execute("SELECT 1")              # autocommit, on database "postgres"
        with hot_standby(primary) as standby:    # pg_basebackup -R, streaming
            standby.wait_for_replay(primary)     # until it has replayed primary's WAL
            standby.pause_replay()               # pg_wal_replay_pause(): it lags now
            standby.resume_replay()

    with redis_server() as redis:                # redis-server on a free port
        redis.url(db=0)                          # redis://127.0.0.1:PORT/0

`PostgresServer` has `host`, `port`, `datadir`, `url(dbname)`,
`connect(dbname)` (a psycopg connection, autocommit), `execute(sql, params,
dbname=...)` (returns the rows, if any), `create_database(name)`,
`current_lsn()`, and on a standby `replay_lsn()`, `pause_replay()`,
`resume_replay()`, `wait_for_replay(primary)`.

The cluster allows trust authentication from 127.0.0.1 (replication too), and
runs with `wal_level=replica`, `max_wal_senders=10`, `fsync=off` (tests only;
commits stay synchronous, so that a standby that has replayed `current_lsn()`
has every committed row).
When the test process is root, the servers run as the `postgres` OS user
(`runuser`), as PostgreSQL refuses to run as root. Binaries are looked up under
/usr/lib/postgresql/*/bin (the newest) or on PATH.

Pytest fixtures (session-scoped: a cluster costs seconds; import them into a
conftest or a test module, e.g. `from tests.support.servers import pg_primary`):

- `pg_primary`: a second PostgreSQL cluster, able to have standbys;
- `pg_standby`: a hot standby streaming from `pg_primary`;
- `redis_servers`: two Redis servers, a list of `RedisServer`.

Tests that use them are marked `servers` (pyproject.toml) and run in `make test`.

The whole system over such servers (two clusters, a standby, four Redis, and
the web, workers and beat) is `tests.support.spread.spread_stack(log_dir)`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

HOST = "127.0.0.1"
PG_USER = "postgres"
START_TIMEOUT = 60.0


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pg_bin(name: str) -> str:
    """Return the path of a PostgreSQL server binary (initdb, pg_ctl...)."""
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda path: (
            int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0
        ),
    )
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path is None:
        raise RuntimeError(f"PostgreSQL binary {name!r} not found")
    return on_path


def _as_postgres(argv: list[str]) -> list[str]:
    """Run as the postgres OS user when we are root (PostgreSQL refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_USER, "--", *argv]
    return argv


def _own_dir(prefix: str) -> Path:
    """Make a temporary directory that the server's OS user owns."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        user = pwd.getpwnam(PG_USER)
        os.chown(path, user.pw_uid, user.pw_gid)
    return path


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )


@dataclass
class PostgresServer:
    """A PostgreSQL server this module started (a primary or a standby)."""

    root: Path
    port: int
    standby: bool = False
    host: str = HOST
    server_settings: dict[str, str] = field(default_factory=dict)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgres://{PG_USER}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=PG_USER,
            dbname=dbname,
            autocommit=True,
            connect_timeout=5,
        )

    def execute(
        self, sql: str, params: Any = None, *, dbname: str = "postgres"
    ) -> list[tuple[Any, ...]]:
        """Run one statement in autocommit; return its rows (empty if none)."""
        with self.connect(dbname) as conn, conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def create_database(self, name: str) -> str:
        """Create database `name` (dropping it first); return its URL."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    # --- WAL positions ----------------------------------------------------------

    def current_lsn(self) -> str:
        return str(self.execute("SELECT pg_current_wal_lsn()::text")[0][0])

    def replay_lsn(self) -> str:
        return str(self.execute("SELECT pg_last_wal_replay_lsn()::text")[0][0])

    def pause_replay(self) -> None:
        """Stop applying WAL (a standby): it keeps receiving, answers stale reads."""
        self.execute("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 10
        while self.execute("SELECT pg_get_wal_replay_pause_state()")[0][0] != "paused":
            if time.monotonic() > deadline:
                raise AssertionError("standby replay did not pause")
            time.sleep(0.02)

    def resume_replay(self) -> None:
        self.execute("SELECT pg_wal_replay_resume()")

    def wait_for_replay(self, primary: PostgresServer, timeout: float = 20.0) -> None:
        """Wait until this standby has replayed everything `primary` has written."""
        target = primary.current_lsn()
        deadline = time.monotonic() + timeout
        while True:
            caught_up = self.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]
            )[0][0]
            if caught_up:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"standby did not replay up to {target}")
            time.sleep(0.02)

    # --- Life cycle ---------------------------------------------------------------

    def start(self) -> PostgresServer:
        options = {
            "port": str(self.port),
            "listen_addresses": self.host,
            "unix_socket_directories": str(self.root),
            **self.server_settings,
        }
        opts = " ".join(f"-c {name}={value}" for name, value in options.items())
        _run(
            _as_postgres(
                [
                    pg_bin("pg_ctl"),
                    "-D",
                    str(self.datadir),
                    "-l",
                    str(self.logfile),
                    "-o",
                    opts,
                    "-w",
                    "-t",
                    str(int(START_TIMEOUT)),
                    "start",
                ]
            )
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                self.execute("SELECT 1")
                return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server at once (no checkpoint: the directory goes anyway)."""
        if (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                _run(
                    _as_postgres(
                        [
                            pg_bin("pg_ctl"),
                            "-D",
                            str(self.datadir),
                            "-m",
                            "immediate",
                            "-w",
                            "stop",
                        ]
                    )
                )

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""


PRIMARY_SETTINGS = {
    "wal_level": "replica",
    "max_wal_senders": "10",
    "hot_standby": "on",
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "32MB",
}


@contextlib.contextmanager
def postgres_cluster(
    port: int | None = None, **server_settings: str
) -> Iterator[PostgresServer]:
    """Create, start and finally stop and delete a new PostgreSQL cluster."""
    root = _own_dir("cqrs-pg-")
    server = PostgresServer(
        root=root,
        port=port or free_port(),
        server_settings={**PRIMARY_SETTINGS, **server_settings},
    )
    try:
        _run(
            _as_postgres(
                [
                    pg_bin("initdb"),
                    "-D",
                    str(server.datadir),
                    "-U",
                    PG_USER,
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ]
            )
        )
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def hot_standby(
    primary: PostgresServer, port: int | None = None
) -> Iterator[PostgresServer]:
    """Clone `primary` with pg_basebackup -R and run it as a streaming hot standby."""
    root = _own_dir("cqrs-pg-standby-")
    server = PostgresServer(
        root=root,
        port=port or free_port(),
        standby=True,
        server_settings={
            "hot_standby": "on",
            "fsync": "off",
            "max_connections": "100",
            "shared_buffers": "32MB",
            "max_standby_streaming_delay": "-1",
        },
    )
    try:
        _run(
            _as_postgres(
                [
                    pg_bin("pg_basebackup"),
                    "-h",
                    primary.host,
                    "-p",
                    str(primary.port),
                    "-U",
                    PG_USER,
                    "-D",
                    str(server.datadir),
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                    "--no-sync",
                ]
            )
        )
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class RedisServer:
    """A redis-server this module started (no persistence)."""

    root: Path
    port: int
    host: str = HOST
    process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    def client(self, db: int = 0) -> Any:
        import redis

        return redis.Redis.from_url(self.url(db))

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        log = open(self.root / "redis.log", "wb")  # noqa: SIM115 -- closed by the child's exit
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                self.host,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
                "--protected-mode",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if self.client().ping():
                    return self
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def redis_server(port: int | None = None) -> Iterator[RedisServer]:
    """Start, and finally stop and delete, a Redis server on a free port."""
    root = Path(tempfile.mkdtemp(prefix="cqrs-redis-"))
    server = RedisServer(root=root, port=port or free_port())
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- Pytest fixtures ------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_primary() -> Iterator[PostgresServer]:
    """A second PostgreSQL cluster on a free port, able to stream to standbys."""
    with postgres_cluster() as server:
        yield server


@pytest.fixture(scope="session")
def pg_standby(pg_primary: PostgresServer) -> Iterator[PostgresServer]:
    """A hot standby streaming from `pg_primary`, replaying (resumed after each use)."""
    with hot_standby(pg_primary) as server:
        yield server


@pytest.fixture(scope="session")
def redis_servers() -> Iterator[list[RedisServer]]:
    """Two Redis servers on free ports."""
    with redis_server() as first, redis_server() as second:
        yield [first, second]
