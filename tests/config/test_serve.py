"""`config.serve`: the web's worker processes each listen on a socket of their own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from tests.support.processes import ROOT, WebServer, listening_sockets, wait_until

pytestmark = [pytest.mark.e2e]

CONNECTIONS = 64


@pytest.fixture
def web2(django_db_setup: Any, output_dir: Path) -> Iterator[WebServer]:
    """`make run`'s web layout: two worker processes."""
    server = WebServer(log_dir=output_dir)
    server.workers = 2
    server.start()
    yield server
    server.stop()


def sockets_of(pid: int) -> set[int]:
    """Return the inodes of the sockets a process holds open."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def workers_of(server: WebServer) -> list[psutil.Process]:
    """Return the server's worker processes (not multiprocessing's tracker)."""
    assert server.process is not None
    workers = []
    for child in psutil.Process(server.process.pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                workers.append(child)
        except psutil.Error:  # killed, not yet reaped by the supervisor
            continue
    return workers


def listeners_by_worker(server: WebServer) -> dict[int, set[int]]:
    """Return each worker's pid and the listening sockets it holds."""
    listening = listening_sockets(server.port)
    return {w.pid: sockets_of(w.pid) & listening for w in workers_of(server)}


def test_each_worker_listens_on_a_socket_of_its_own(web2: WebServer) -> None:
    by_worker = listeners_by_worker(web2)
    assert len(by_worker) == 2
    # One socket each, not one socket shared (uvicorn --workers shares its parent's).
    assert all(len(inodes) == 1 for inodes in by_worker.values()), by_worker
    first, second = by_worker.values()
    assert first.isdisjoint(second)
    assert web2.process is not None
    assert not sockets_of(web2.process.pid) & listening_sockets(web2.port)


def test_connections_opened_at_once_reach_every_worker(web2: WebServer) -> None:
    clients = [
        socket.create_connection(("127.0.0.1", web2.port)) for _ in range(CONNECTIONS)
    ]
    try:
        request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        for client in clients:
            client.sendall(request)
        for client in clients:
            assert client.recv(64).startswith(b"HTTP/1.1 200")
        ports = {client.getsockname()[1] for client in clients}
        served_by: Counter[int] = Counter()
        for worker in workers_of(web2):
            for conn in worker.net_connections(kind="tcp"):
                if conn.raddr and conn.raddr.port in ports:
                    served_by[worker.pid] += 1
    finally:
        for client in clients:
            client.close()
    assert sum(served_by.values()) == CONNECTIONS
    # The kernel hashes each connection to one of the workers' sockets: all
    # of them on one worker has odds of 2 in 2**64.
    assert len(served_by) == 2, served_by


def test_a_worker_that_dies_is_replaced_with_a_socket_of_its_own(
    web2: WebServer,
) -> None:
    killed, survivor = workers_of(web2)
    killed.send_signal(signal.SIGKILL)

    def replaced() -> bool:
        pids = {w.pid for w in workers_of(web2)}
        return len(pids) == 2 and killed.pid not in pids

    wait_until(replaced, timeout=30, interval=0.2)
    wait_until(lambda: len(listening_sockets(web2.port)) == 2, timeout=30)
    by_worker = listeners_by_worker(web2)
    assert survivor.pid in by_worker
    assert all(len(inodes) == 1 for inodes in by_worker.values()), by_worker


def test_a_second_server_on_a_taken_port_refuses_to_start(web2: WebServer) -> None:
    # SO_REUSEPORT alone would let it join the first server's port silently.
    second = subprocess.run(
        [sys.executable, "-m", "config.serve", "--port", str(web2.port)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 3  # uvicorn's STARTUP_FAILURE
    assert f"Port {web2.port} on 127.0.0.1 is not free" in second.stderr
    assert len(listening_sockets(web2.port)) == 2


def test_uvicorns_options_and_environment_reach_the_workers(
    django_db_setup: Any, output_dir: Path, web: WebServer
) -> None:
    # An environment variable of uvicorn's own command line (as for
    # UVICORN_WS_MAX_SIZE in docs/operations.md) reaches the workers; the
    # options on the command line (--host, --port, --workers) are every test's.
    server = WebServer(log_dir=output_dir, UVICORN_SERVER_HEADER="false")
    server.start()
    try:
        bare = requests.get(f"{server.url}/healthz", timeout=5)
    finally:
        server.stop()
    assert bare.ok
    assert "server" not in bare.headers
    assert requests.get(f"{web.url}/healthz", timeout=5).headers["server"] == "uvicorn"


def test_uvicorns_own_socket_options_are_refused() -> None:
    for option in ("--reload", "--uds=/tmp/cqrs-serve.sock"):
        refused = subprocess.run(
            [sys.executable, "-m", "config.serve", "--port", "0", option],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert refused.returncode == 2, refused.stderr
        assert "run uvicorn for them" in refused.stderr
