"""The fault tests' own PostgreSQL, Redis and processes (never the shared ones)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.driver import Driver
from tests.reliability.services import Stack, start_stack, stop_stack


@pytest.fixture(scope="session")
def stack(output_dir: Path) -> Iterator[Stack]:
    """Web, command and projection workers and beat on private services."""
    log_dir = output_dir / "reliability"
    log_dir.mkdir(exist_ok=True)
    started = start_stack(log_dir)
    yield started
    stop_stack(started)


@pytest.fixture
def driver(stack: Stack) -> Iterator[Driver]:
    """Drive the private stack over HTTP; restore its processes afterwards."""
    drive = Driver(stack)
    yield drive
    drive.restore()
