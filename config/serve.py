"""Serve the ASGI application from worker processes that each listen on the port.

    python -m config.serve --host 127.0.0.1 --port 8000 --workers 2

`uvicorn --workers N` binds one listening socket in its parent and shares it:
a worker woken for a new connection accepts every connection waiting, so a
client that opens its few keep-alive connections at once (a load generator, a
proxy's pool) can find them all in one worker, on one core and one GIL, while
the others idle (docs/performance.md: 16 of 16 connections in one of two
workers in 5 runs of 40, at about half the throughput of the others). Here each
worker binds a socket of its own with `SO_REUSEPORT` and the kernel spreads
the connections among them by their addresses' hash.

Supervision is uvicorn's own (`uvicorn.supervisors.Multiprocess`): a worker
that dies is replaced, SIGTERM and SIGINT stop them all, a worker that cannot
start stops the parent. Since `SO_REUSEPORT` would let a second server of the
same user share a port silently, the parent first checks that the port is
free. When a worker stops, the connections still in its own accept queue are
reset; clients retry (an `Idempotency-Key` makes a retried command safe).
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--no-access-log", dest="access_log", action="store_false", default=True
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    config = uvicorn.Config(
        APPLICATION,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=args.access_log,
    )
    return serve(config)


if __name__ == "__main__":
    sys.exit(main())
