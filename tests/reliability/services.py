"""Private PostgreSQL and Redis instances, and the processes of a whole stack.

Fault tests restart, flush and pause these, never the shared services that other
test runs use at the same time. Everything listens on loopback, on free ports.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests

from tests.support import rabbitmq
from tests.support.processes import (
    BIN,
    ROOT,
    WebServer,
    Worker,
    free_port,
    spawn,
    terminate,
    test_env,
    wait_until,
)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DB_NAME = "cqrs_fault_test"
READ_DB_NAME = "cqrs_fault_read_test"


class PrivateRedis:
    """A redis-server child process without persistence: a restart loses all."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = log_dir / f"redis-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        log = open(self.log_path, "ab")  # noqa: SIM115 -- closed by the child's exit
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self.ping, timeout=10, interval=0.05)
        return self

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2)

    def ping(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop and start again on the same port: every key (queues too) is lost."""
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)


class PrivatePostgres:
    """A throw-away PostgreSQL 15 cluster in a temporary directory."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="cqrs-pg-"))
        self.data = self.dir / "data"
        self.log_path = log_dir / f"postgres-{self.port}.log"
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
            entry = pwd.getpwnam("postgres")
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            with contextlib.suppress(FileNotFoundError):
                self.log_path.unlink()
            self.log_path.touch()
            os.chown(self.log_path, entry.pw_uid, entry.pw_gid)

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [*self.as_postgres, *args],
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def init(self) -> PrivatePostgres:
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        )
        self.start()
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            for name in (DB_NAME, READ_DB_NAME):
                conn.execute(f"CREATE DATABASE {name}")
        return self

    def start(self) -> None:
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            "-w",
            "-o",
            # max_connections stays at PostgreSQL's default (100), as in CI and
            # production: the connection budget must fit it.
            f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"
        )

    def is_up(self) -> bool:
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=1) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class Beat:
    """A real `celery beat` process: it schedules the sweeper and the safety net."""

    def __init__(self, log_dir: Path, **env: str) -> None:
        self.name = f"beat-{uuid.uuid4().hex[:8]}"
        self.log_path = log_dir / f"{self.name}.log"
        self.schedule = Path(tempfile.mkdtemp(prefix="cqrs-beat-")) / "schedule"
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Beat:
        self.process = spawn(
            [
                str(BIN / "celery"),
                "-A",
                "config.celery_app",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.schedule),
            ],
            self.log_path,
            self.env,
        )
        wait_until(lambda: b"beat: Starting" in self.log_path.read_bytes(), timeout=30)
        return self

    def stop(self) -> None:
        terminate(self.process, timeout=10)


@dataclass
class Stack:
    """The system on private services: web, command and projection workers, beat."""

    pg: PrivatePostgres
    redis: PrivateRedis
    log_dir: Path
    env: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)
    web: WebServer | None = None
    commands: Worker | None = None
    projections: Worker | None = None
    beat: Beat | None = None
    extra: list[Any] = field(default_factory=list)
    # Events written straight into the store by a test (no command behind them).
    foreign_positions: set[int] = field(default_factory=set)

    @property
    def dsn(self) -> str:
        return self.pg.url(DB_NAME)

    @property
    def read_dsn(self) -> str:
        return self.pg.url(READ_DB_NAME)

    @property
    def url(self) -> str:
        assert self.web is not None
        return self.web.url

    def worker(self, queues: str = "commands,imports", **env: str) -> Worker:
        """Start another worker on the private services; stopped with the stack."""
        process = Worker(
            queues=queues,
            concurrency=int(env.pop("concurrency", "2")),
            log_dir=self.log_dir,
            **{**self.env, **env},
        ).start()
        self.extra.append(process)
        return process

    def manage(self, *args: str, timeout: float = 120) -> str:
        out = subprocess.run(
            [str(BIN / "python"), "manage.py", *args],
            cwd=ROOT,
            env=test_env(**self.env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(args)}:\n{out.stdout}{out.stderr}"
            )
        return out.stdout

    def prepare(self, users: list[tuple[str, bool]] | None = None) -> None:
        """Migrate both databases, create `users` (default USERS), keep their tokens.

        The read database migrates beside the write database and its users:
        each `manage.py` run spends seconds importing Django.
        """

        def write_side() -> str:
            self.manage("migrate", "--noinput")
            return self.manage("shell", "-c", USERS_SCRIPT % (users or USERS,))

        with ThreadPoolExecutor(2) as pool:
            read = pool.submit(
                self.manage, "migrate", "--noinput", "--database", "read"
            )
            out = write_side()
            read.result()
        self.tokens = json.loads(out.strip().splitlines()[-1])

    def start_processes(self) -> None:
        """Start the web server, a command worker, a projection worker and beat.

        Side by side: each takes seconds to import Django.
        """
        env, log_dir = self.env, self.log_dir
        self.web = WebServer(log_dir=log_dir, **env)
        self.commands = Worker(
            queues="commands,imports", concurrency=2, log_dir=log_dir, **env
        )
        self.projections = Worker(
            queues="projections", concurrency=1, log_dir=log_dir, **env
        )
        self.beat = Beat(log_dir, **env)
        processes = [self.web, self.commands, self.projections, self.beat]
        with ThreadPoolExecutor(len(processes)) as pool:
            list(pool.map(lambda process: process.start(), processes))

    def session(self, who: str) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {self.tokens[who]}"
        return session

    def log_files(self) -> list[Path]:
        """Return the logs of every process the stack ever ran (killed ones too)."""
        return sorted(self.log_dir.glob("*.log"))

    def processes(self) -> list[Any]:
        """Return every process of the stack that is to be stopped with it."""
        return [*self.extra, self.beat, self.projections, self.commands, self.web]

    def stop(self) -> None:
        """Stop every process at once, as separate hosts would stop.

        Each may take its grace period (a worker finishes its tasks and joins
        its relays): one after another, they took 15 s of a teardown.
        """

        def stop(process: Any) -> None:
            if process is not None:
                with contextlib.suppress(Exception):
                    process.stop()

        everything = self.processes()
        with ThreadPoolExecutor(len(everything)) as pool:
            list(pool.map(stop, everything))


USERS_SCRIPT = """
import json
from django.contrib.auth.models import User
from api.tokens import issue_token
tokens = {}
for name, staff in %s:
    user, _ = User.objects.get_or_create(
        username=name, defaults={"is_staff": staff, "is_superuser": staff}
    )
    user.set_password(name + "-pass-123")
    user.save()
    tokens[name] = issue_token(user)
print(json.dumps(tokens))
"""

USERS = [("staff", True)] + [(f"customer{i}", False) for i in range(8)]


def stack_broker_url(private_redis: PrivateRedis) -> str:
    """The private Redis, or on a RabbitMQ run a virtual host of the stack's own."""
    session = os.environ.get("CELERY_BROKER_URL", "")
    if not rabbitmq.is_rabbitmq(session):
        return private_redis.url
    url = rabbitmq.with_vhost(session, f"{rabbitmq.vhost_of(session)}-faults")
    rabbitmq.add_vhost(url)
    return url


def start_stack(log_dir: Path) -> Stack:
    """Start private Redis and PostgreSQL, migrate, then the four processes."""
    pg = PrivatePostgres(log_dir).init()
    private_redis = PrivateRedis(log_dir).start()
    env = {
        "DATABASE_URL": pg.url(DB_NAME),
        "READ_DATABASE_URL": pg.url(READ_DB_NAME),
        "REDIS_URL": private_redis.url,
        "CELERY_BROKER_URL": stack_broker_url(private_redis),
        "COMMAND_LEASE_SECONDS": "4",
        "COMMAND_REDRIVE_AFTER_SECONDS": "1",
        "SWEEP_INTERVAL_SECONDS": "1",
        "PROJECTION_SAFETY_NET_SECONDS": "1",
        "COMMAND_THROTTLE_RATE": "100000/min",
        "DB_CONNECT_TIMEOUT": "2",
    }
    stack = Stack(pg=pg, redis=private_redis, log_dir=log_dir, env=env)
    stack.prepare()
    stack.start_processes()
    return stack


def stop_stack(stack: Stack) -> None:
    stack.stop()
    if rabbitmq.is_rabbitmq(stack.env["CELERY_BROKER_URL"]):
        rabbitmq.delete_vhost(stack.env["CELERY_BROKER_URL"])
    stack.redis.stop()
    stack.pg.destroy()
