"""Start-up objects are frozen out of the cyclic collector (config/startup.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.processes import ROOT

pytestmark = [pytest.mark.integration]

# A bare interpreter freezes nothing; Django and DRF alone leave tens of
# thousands of objects, the whole application well over 100,000.
AT_LEAST = 50_000


def frozen_after(code: str) -> int:
    """Run `code` in a fresh interpreter; return how many objects it froze."""
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport gc; print(gc.get_freeze_count())"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(done.stdout.split()[-1])


def test_a_web_worker_freezes_what_it_built_on_import() -> None:
    assert frozen_after("import config.asgi") >= AT_LEAST


def test_celery_processes_freeze_when_ready_and_after_a_fork() -> None:
    started = "from config.celery_app import app; import django; django.setup()"
    assert frozen_after(started) == 0
    # The heartbeat's receiver of worker_ready needs a real worker: only ours runs.
    only_ours = (
        "from celery import signals; from observability import workers; "
        "signals.worker_ready.disconnect(workers.worker_ready)"
    )
    for signal in ("worker_ready", "worker_process_init"):
        code = f"{started}\n{only_ours}\nsignals.{signal}.send(None)"
        assert frozen_after(code) >= AT_LEAST, signal
