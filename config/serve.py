"""Serve the ASGI application from worker processes that each listen on the port.

    python -m config.serve --host 127.0.0.1 --port 8000 --workers 2 [uvicorn options]

`uvicorn --workers N` binds one listening socket in its parent and shares it:
a worker woken for a new connection accepts every connection waiting, so a
client that opens its few keep-alive connections at once (a load generator, a
proxy's pool) can find them all in one worker, on one core and one GIL, while
the others idle (docs/performance.md: 16 of 16 connections in one of two
workers in 5 runs of 40, at about half the throughput of the others). Here each
worker binds a socket of its own with `SO_REUSEPORT` and the kernel spreads
the connections among them by their addresses' hash.

The options are uvicorn's, read by uvicorn's own command line (so are its
`UVICORN_*` environment variables), with the application given: everything but
`--reload`, `--uds` and `--fd`, which name no host and port to share.
Supervision is uvicorn's too (`uvicorn.supervisors.Multiprocess`): a worker
that dies is replaced, SIGTERM and SIGINT stop them all, a worker that cannot
start stops the parent. Since `SO_REUSEPORT` would let a second server of the
same user share a port silently, the parent first checks that the port is
free. When a worker stops, the connections still in its own accept queue are
reset; clients retry (an `Idempotency-Key` makes a retried command safe).
"""

from __future__ import annotations

import importlib
import logging
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

APPLICATION = "config.asgi:application"

logger = logging.getLogger("uvicorn.error")


def listening_socket(host: str, port: int, *, share: bool = True) -> socket.socket:
    """Return a socket bound to (host, port); with `share`, one of a group."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if share:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class OwnSocketProcess(multiprocess.Process):
    """A uvicorn worker process that listens on a socket of its own."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            sock = listening_socket(self.config.host, self.config.port)
        except OSError as exc:
            config = self.config
            logger.error("Cannot listen on %s:%s: %s", config.host, config.port, exc)
            sys.exit(STARTUP_FAILURE)
        super().target([sock])


def serve(config: uvicorn.Config) -> int:
    """Run `config.workers` processes until told to stop; return the exit status."""
    try:
        listening_socket(config.host, config.port, share=False).close()
    except OSError as exc:
        logger.error("Port %s on %s is not free: %s", config.port, config.host, exc)
        return STARTUP_FAILURE
    logger.info(
        "Serving on %s:%s from %s workers, each with a listening socket of its own",
        config.host,
        config.port,
        config.workers,
    )
    # uvicorn's supervisor starts (and restarts) its workers through this name.
    multiprocess.Process = OwnSocketProcess  # type: ignore[misc]
    supervisor = multiprocess.Multiprocess(config, sockets=[])
    supervisor.run()
    failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
    return STARTUP_FAILURE if failed else 0


def run(app: str, *, app_dir: str | None = None, **options: Any) -> None:
    """Serve with uvicorn's options, as `uvicorn.run` would, a socket per worker."""
    if app_dir is not None:
        sys.path.insert(0, app_dir)
    config = uvicorn.Config(app, **options)
    if config.should_reload or config.uds or config.fd is not None:
        logger.error("--reload, --uds and --fd are uvicorn's own: run uvicorn for them")
        sys.exit(2)
    sys.exit(serve(config))


def main(argv: list[str] | None = None) -> None:
    """Read uvicorn's command line (and its `UVICORN_*` variables), then `run`."""
    command_line: Any = importlib.import_module("uvicorn.main")
    # uvicorn's command ends in a call of its module's `run`: this one instead.
    command_line.run = run
    args = sys.argv[1:] if argv is None else argv
    command_line.main(args=[APPLICATION, *args], prog_name="python -m config.serve")


if __name__ == "__main__":
    main()
