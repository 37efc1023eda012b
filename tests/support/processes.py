"""Start and stop the real processes tests talk to: Celery workers, the web server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_env(**extra: str) -> dict[str, str]:
    """Return the environment of a child process that uses the test databases."""
    from django.conf import settings

    default, read = settings.DATABASES["default"], settings.DATABASES["read"]

    def url(db: dict[str, Any]) -> str:
        return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"

    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=url(default),
        READ_DATABASE_URL=url(read),
        REDIS_URL=settings.REDIS_URL,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def wait_until(
    predicate: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.05
) -> Any:
    """Poll `predicate` until it returns a truthy value; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def spawn(
    argv: list[str], log_path: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """Start a process of the system in a session of its own, logging to a file."""
    log = open(log_path, "wb")  # noqa: SIM115 -- closed by the child's exit
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env=test_env(**env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def terminate(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM a process and its children; SIGKILL them if still up after `timeout`."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


class Worker:
    """A real Celery worker process (prefork) on the given queues."""

    def __init__(
        self,
        queues: str = "commands,imports,projections,maintenance",
        concurrency: int = 2,
        log_dir: Path | None = None,
        **env: str,
    ) -> None:
        self.name = f"test-{uuid.uuid4().hex[:8]}"
        self.queues = queues
        self.concurrency = concurrency
        self.log_path = (log_dir or Path("/tmp")) / f"{self.name}.log"
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        self.process = spawn(
            [
                str(BIN / "celery"),
                "-A",
                "config.celery_app",
                "worker",
                "-Q",
                self.queues,
                "-c",
                str(self.concurrency),
                "-n",
                f"{self.name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            self.log_path,
            self.env,
        )
        wait_until(self.is_ready, timeout=30, interval=0.2)
        return self

    def is_ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited: {self.log()}")
        return b"ready." in self.log_path.read_bytes()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def children(self) -> list[int]:
        assert self.process is not None
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout
        return [int(pid) for pid in out.split()]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the main process and its children at once."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        terminate(self.process, timeout=15)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_sockets(port: int) -> set[int]:
    """Return the inodes of the TCP sockets listening on `port` (IPv4)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "0A":  # TCP_LISTEN
            inodes.add(int(fields[9]))
    return inodes


class WebServer:
    """The real ASGI server serving HTTP and WebSocket, as `make run` starts it.

    `config.serve`: uvicorn worker processes, each on a listening socket of
    its own, under uvicorn's supervisor.
    """

    # Worker processes (`make run` has two).
    workers = 1

    def __init__(self, log_dir: Path | None = None, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = (log_dir or Path("/tmp")) / f"web-{self.port}.log"
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WebServer:
        import requests

        self.process = spawn(
            [
                *(str(BIN / "python"), "-m", "config.serve"),
                *("--host", "127.0.0.1", "--port", str(self.port)),
                *("--workers", str(self.workers), "--no-access-log"),
            ],
            self.log_path,
            self.env,
        )

        def up() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(self.log_path.read_text(errors="replace"))
            try:
                return requests.get(f"{self.url}/healthz", timeout=1).ok
            except requests.RequestException:
                return False

        wait_until(up, timeout=30, interval=0.2)
        # `up` is the first worker's answer; each worker listens once it is up.
        wait_until(
            lambda: len(listening_sockets(self.port)) == self.workers,
            timeout=30,
            interval=0.1,
        )
        return self

    def stop(self) -> None:
        terminate(self.process, timeout=10)
