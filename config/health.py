"""Liveness and readiness probes, answered without authentication.

`/healthz` says the process answers. `/readyz` checks what serving needs: both
databases reachable and migrated, Redis, a live worker on every queue (by the
workers' heartbeats) and projections no further behind than
READY_MAX_PROJECTION_LAG_EVENTS. The checks run in parallel threads under one
deadline (READY_TIMEOUT_SECONDS), so that a dependency that hangs makes the
probe answer 503 with `"error": "timeout"` instead of hanging the probe.

`/readyz` is public, so its answer is cached in the process for
READY_CACHE_SECONDS: a flood of probes runs the checks (and opens their
database connections and threads) about once per interval per process, not
once per call. While one request refreshes the answer, the others get the
previous one rather than queueing behind it.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse

from observability import heartbeat

Check = Callable[[], dict[str, Any]]
# Aliases found fully migrated: a running process's code cannot gain migrations.
_migrated: set[str] = set()
# (monotonic time, HTTP status, body) of the last answer, and who refreshes it.
_answer: tuple[float, int, dict[str, Any]] | None = None
_refreshing = threading.Lock()


def healthz(request: HttpRequest) -> JsonResponse:
    """Answer that the process is alive."""
    return JsonResponse({"status": "ok"})


def check_database(alias: str) -> dict[str, Any]:
    connection = connections[alias]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if alias not in _migrated:
            executor = MigrationExecutor(connection)
            pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
            if pending:
                return {"ok": False, "error": f"{len(pending)} migrations not applied"}
            _migrated.add(alias)
        return {"ok": True}
    finally:
        # Runs in a probe thread: never leave its connection behind.
        connection.close()


def check_redis() -> dict[str, Any]:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
    )
    try:
        client.ping()
    finally:
        client.close()
    return {"ok": True}


def check_workers() -> dict[str, Any]:
    live = heartbeat.live_workers(
        settings.REDIS_URL,
        settings.READY_REQUIRED_QUEUES,
        settings.WORKER_HEARTBEAT_SECONDS,
    )
    missing = sorted(queue for queue, count in live.items() if count == 0)
    result: dict[str, Any] = {"ok": not missing, "live": live}
    if missing:
        result["error"] = f"no live worker for queue(s): {', '.join(missing)}"
    return result


def check_projections() -> dict[str, Any]:
    from projections.lag import projection_lag

    try:
        limit = settings.READY_MAX_PROJECTION_LAG_EVENTS
        lag = {row["name"]: row["lag_events"] for row in projection_lag()}
    finally:
        connections["default"].close()
        connections["read"].close()
    behind = sorted(name for name, events in lag.items() if events > limit)
    result: dict[str, Any] = {"ok": not behind, "lag_events": lag}
    if behind:
        result["error"] = f"more than {limit} events behind: {', '.join(behind)}"
    return result


def checks() -> dict[str, Check]:
    return {
        "database": lambda: check_database("default"),
        "read_database": lambda: check_database("read"),
        "redis": check_redis,
        "workers": check_workers,
        "projections": check_projections,
    }


def run_checks(probes: dict[str, Check], timeout: float) -> dict[str, dict[str, Any]]:
    """Run every probe in its own thread; a probe not done in time failed."""
    results: dict[str, dict[str, Any]] = {}
    pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=len(probes), thread_name_prefix="readyz"
    )
    try:
        futures = {name: pool.submit(probe) for name, probe in probes.items()}
        concurrent.futures.wait(futures.values(), timeout=timeout)
        for name, future in futures.items():
            if not future.done():
                results[name] = {"ok": False, "error": "timeout"}
            elif (exc := future.exception()) is not None:
                results[name] = {"ok": False, "error": type(exc).__name__}
            else:
                results[name] = future.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return results


def readiness() -> tuple[int, dict[str, Any]]:
    """Run every check; return 200 or 503 and the body naming the failures."""
    results = run_checks(checks(), settings.READY_TIMEOUT_SECONDS)
    failed = sorted(name for name, result in results.items() if not result["ok"])
    body = {
        "status": "unavailable" if failed else "ready",
        "failed": failed,
        "checks": results,
    }
    return (503 if failed else 200), body


def cached_readiness() -> tuple[int, dict[str, Any]]:
    """Return the last answer if it is fresh, else refresh it (one thread at a time).

    A request arriving while another refreshes gets the previous answer; only
    the first one ever, with nothing to fall back on, waits for the refresh.
    """
    global _answer
    answer = _answer
    if answer is not None and time.monotonic() - answer[0] < _max_age():
        return answer[1], answer[2]
    if not _refreshing.acquire(blocking=answer is None):
        assert answer is not None
        return answer[1], answer[2]
    try:
        answer = _answer
        if answer is None or time.monotonic() - answer[0] >= _max_age():
            status, body = readiness()
            answer = _answer = (time.monotonic(), status, body)
        return answer[1], answer[2]
    finally:
        _refreshing.release()


def forget_readiness() -> None:
    """Drop the cached answer (tests, and after a settings change)."""
    global _answer
    _answer = None


def _max_age() -> float:
    return float(settings.READY_CACHE_SECONDS)


def readyz(request: HttpRequest) -> JsonResponse:
    """Answer 200 if every check passes, else 503; the body names the failures."""
    status, body = cached_readiness()
    return JsonResponse(body, status=status)
