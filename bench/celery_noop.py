"""The Celery baseline: no-op tasks on the project's broker and worker settings.

Started as `celery -A bench.celery_noop worker -Q bench -c 2`, like the command
worker (same CELERY_* settings: acks_late, prefetch 1, JSON). `noop` counts
itself in Redis (the drain rate); `noop_commit` does one PostgreSQL commit and
answers on a Redis list (the round trip of the latency figure).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import psycopg
import redis
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("cqrs_bench")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = {"bench.*": {"queue": "bench"}}

DONE_KEY = "bench:noop:done"


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


@functools.cache
def _pg() -> psycopg.Connection[Any]:
    conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS bench_noop "
        "(id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())"
    )
    return conn


@app.task(name="bench.noop", acks_late=True, ignore_result=True)
def noop() -> None:
    """Do nothing but count (one INCR: how the drain is observed)."""
    _redis().incr(DONE_KEY)


@app.task(name="bench.noop_commit", acks_late=True, ignore_result=True)
def noop_commit(reply_to: str) -> None:
    """Commit one row, then answer on `reply_to`."""
    _pg().execute("INSERT INTO bench_noop DEFAULT VALUES")
    _redis().rpush(reply_to, 1)
