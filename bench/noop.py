"""The Celery no-op baselines (bench/celery_noop.py), measured in the same run."""

from __future__ import annotations

import time
import uuid

import redis

from . import common
from .common import Proc, System


def noop_worker(system: System) -> Proc:
    """Start a worker like the command worker, on the bench's no-op tasks."""
    argv = list(common.make_commands(system.port)["commands_worker"])
    argv[argv.index("-A") + 1] = "bench.celery_noop"
    argv[argv.index("-Q") + 1] = "bench"
    argv[argv.index("-n") + 1] = "bench-noop@%h"
    proc = Proc("noop-worker", argv, common.bench_env(system.port)).start()
    system.procs.append(proc)
    common.wait_until(lambda: system.is_ready(proc), timeout=60)
    return proc


def drain_rate(count: int) -> float:
    """Send `count` no-op tasks from one producer; return tasks/s end to end."""
    from bench.celery_noop import DONE_KEY, app

    client = redis.Redis.from_url(common.REDIS_URL)
    client.delete(DONE_KEY)
    started = time.perf_counter()
    for _ in range(count):
        app.send_task("bench.noop", queue="bench")
    common.wait_until(
        lambda: int(client.get(DONE_KEY) or 0) >= count, timeout=600, interval=0.005
    )
    return count / (time.perf_counter() - started)


def round_trips(samples: int) -> list[float]:
    """Return ms of: send a task that commits one row, until its answer arrives."""
    from bench.celery_noop import app

    client = redis.Redis.from_url(common.REDIS_URL)
    times = []
    for _ in range(samples + 5):
        reply = f"bench:reply:{uuid.uuid4().hex}"
        started = time.perf_counter()
        app.send_task("bench.noop_commit", args=[reply], queue="bench")
        client.blpop([reply], timeout=10)
        times.append((time.perf_counter() - started) * 1000)
    return times[5:]
