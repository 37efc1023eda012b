#!/usr/bin/env python3
"""Run several processes in the foreground, their output prefixed by name.

Usage: run_all.py NAME=COMMAND [NAME=COMMAND ...]

Each child starts in a process group of its own, so that a Ctrl-C in the terminal
reaches this supervisor only; on SIGINT or SIGTERM it sends SIGTERM to every child's
group (a worker's pool processes included), waits for them, and kills what is still
running after RUN_ALL_GRACE_SECONDS (default 20). A second Ctrl-C kills at once.
If one child exits on its own, the others are stopped and the exit status is non-zero.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO

COLORS = ("36", "33", "35", "32", "34", "31")
POLL_SECONDS = 0.2
PR_SET_PDEATHSIG = 1
SELF = "run_all"


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = field(default=None, repr=False)


def parse_specs(specs: Sequence[str]) -> list[Child]:
    """Turn NAME=COMMAND arguments into children to start."""
    children = []
    for spec in specs:
        name, sep, command = spec.partition("=")
        if not sep or not name or not command.strip():
            raise SystemExit(f"run_all: expected NAME=COMMAND, got {spec!r}")
        children.append(Child(name=name, argv=shlex.split(command)))
    if not children:
        raise SystemExit(__doc__)
    return children


def die_with_parent() -> None:
    """Ask Linux to send SIGTERM to this child should the supervisor die."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    def __init__(self, children: list[Child], grace_seconds: float) -> None:
        self.children = children
        self.grace_seconds = grace_seconds
        self.width = max(len(name) for name in [SELF, *(c.name for c in children)])
        self.color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        self.output_lock = threading.Lock()
        self.stop_requested = 0

    def say(self, name: str, line: str, index: int | None = None) -> None:
        label = name.ljust(self.width)
        if self.color and index is not None:
            label = f"\033[{COLORS[index % len(COLORS)]}m{label}\033[0m"
        with self.output_lock:
            sys.stdout.write(f"{label} | {line}\n")
            sys.stdout.flush()

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for index, child in enumerate(self.children):
            self.say(child.name, "$ " + shlex.join(child.argv), index)
            child.process = subprocess.Popen(
                child.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                process_group=0,
                preexec_fn=die_with_parent if sys.platform == "linux" else None,
            )
        for index, child in enumerate(self.children):
            assert child.process is not None
            assert child.process.stdout is not None
            child.reader = threading.Thread(
                target=self.pump,
                args=(child.name, child.process.stdout, index),
                daemon=True,
            )
            child.reader.start()

    def pump(self, name: str, stream: IO[bytes], index: int) -> None:
        for raw in iter(stream.readline, b""):
            self.say(name, raw.decode(errors="replace").rstrip("\r\n"), index)
        stream.close()

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested += 1
        if self.stop_requested > 1:
            self.signal_all(signal.SIGKILL)

    def signal_all(self, signum: int) -> None:
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.process.pid, signum)

    def first_exited(self) -> Child | None:
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                return child
        return None

    def stop_all(self) -> None:
        self.signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        while time.monotonic() < deadline and any(
            c.process is not None and c.process.poll() is None for c in self.children
        ):
            time.sleep(POLL_SECONDS)
        self.signal_all(signal.SIGKILL)
        for child in self.children:
            if child.process is not None:
                child.process.wait()
            if child.reader is not None:
                child.reader.join(timeout=2)

    def run(self) -> int:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_stop)
        try:
            self.start()
        except OSError as error:
            self.say(SELF, f"could not start: {error}")
            self.stop_all()
            return 1
        exited: Child | None = None
        while not self.stop_requested:
            exited = self.first_exited()
            if exited is not None:
                break
            time.sleep(POLL_SECONDS)
        if exited is not None and exited.process is not None:
            code = exited.process.returncode
            self.say(
                "run_all", f"{exited.name} exited with {code}; stopping the others"
            )
        else:
            self.say(SELF, "stopping (SIGTERM to every process group)")
        self.stop_all()
        if exited is None or exited.process is None:
            return 0
        return exit_status(exited.process.returncode)


def exit_status(returncode: int) -> int:
    """Map a child's return code to ours: never 0, 128+N for a signal N."""
    if returncode < 0:
        return 128 - returncode
    return returncode or 1


def main(argv: Sequence[str]) -> int:
    grace = float(os.environ.get("RUN_ALL_GRACE_SECONDS", "20"))
    return Supervisor(parse_specs(argv), grace_seconds=grace).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
