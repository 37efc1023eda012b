"""Liveness and readiness probes, answered without authentication."""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    """Answer that the process is alive."""
    return JsonResponse({"status": "ok"})


def _check_database(alias: str) -> dict[str, Any]:
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        return {"ok": False, "error": f"{len(pending)} migrations not applied"}
    return {"ok": True}


def _check_redis() -> dict[str, Any]:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
    )
    client.ping()
    return {"ok": True}


def readyz(request: HttpRequest) -> JsonResponse:
    """Check both databases (reachable, migrated) and Redis; 503 if one fails."""
    checks: dict[str, dict[str, Any]] = {}
    probes = {
        "database": lambda: _check_database("default"),
        "read_database": lambda: _check_database("read"),
        "redis": _check_redis,
    }
    for name, probe in probes.items():
        try:
            checks[name] = probe()
        except Exception as exc:
            checks[name] = {"ok": False, "error": type(exc).__name__}
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )
