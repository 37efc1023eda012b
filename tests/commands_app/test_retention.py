"""Finished commands are deleted after their retention; idempotency keys outlive it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commands_app import acceptance, retention
from commands_app.models import CommandRecord
from commands_app.retention import purge_finished_commands
from tests.support.commands import submit

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

BODY = {"sku": "MUG-1", "name": "Mug", "price_cents": 100, "initial_stock": 1}


@pytest.fixture(autouse=True)
def no_workers(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """Keep the commands sent here to this test (no task is published)."""
    settings.COMMANDS_RELAY_ENABLED = False
    monkeypatch.setattr(acceptance, "enqueue", lambda record: None)


def send(staff_api: Any, key: str) -> str:
    answer = submit(staff_api, "register-product", BODY, **{"Idempotency-Key": key})
    assert answer.status_code == 202, answer.json()
    return str(answer.json()["id"])


def finished(
    staff_api: Any, key: str, ago: timedelta, status: str = "succeeded"
) -> str:
    """Send a command and make it one that finished `ago` (no worker runs it)."""
    command_id = send(staff_api, key)
    now = timezone.now()
    CommandRecord.objects.filter(pk=command_id).update(
        status=status,
        created_at=now - ago - timedelta(seconds=2),
        started_at=now - ago - timedelta(seconds=1),
        finished_at=now - ago,
    )
    return command_id


def test_finished_commands_are_deleted_after_their_retention_and_open_ones_never(
    staff_api, settings
):
    settings.COMMAND_RETENTION_DAYS = 30
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 24
    days = timedelta(days=1)
    gone = [
        finished(staff_api, "k-old", 31 * days),
        finished(staff_api, "k-rejected", 40 * days, status="rejected"),
        finished(staff_api, "k-failed", 40 * days, status="failed"),
    ]
    recent = finished(staff_api, "k-recent", 29 * days)
    running = send(staff_api, "k-running")
    accepted = send(staff_api, "k-accepted")
    long_ago = timezone.now() - 40 * days
    CommandRecord.objects.filter(pk=running).update(
        status="running", created_at=long_ago, started_at=long_ago
    )
    CommandRecord.objects.filter(pk=accepted).update(
        created_at=long_ago, enqueued_at=long_ago
    )

    assert purge_finished_commands() == 3

    kept = {str(pk) for pk in CommandRecord.objects.values_list("pk", flat=True)}
    assert kept == {recent, running, accepted}
    assert staff_api.get(f"/api/commands/{gone[0]}/").status_code == 404
    # A kept record still answers its key; a deleted one's key is free again.
    assert send(staff_api, "k-recent") == recent
    assert send(staff_api, "k-old") not in gone


def test_an_idempotency_key_outlives_a_shorter_command_retention(staff_api, settings):
    settings.COMMAND_RETENTION_DAYS = 0
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 24
    hours = timedelta(hours=1)
    kept = finished(staff_api, "k-kept", 23 * hours)
    finished(staff_api, "k-gone", 25 * hours)

    assert purge_finished_commands() == 1

    assert send(staff_api, "k-kept") == kept


def test_purging_deletes_in_batches_each_its_own_transaction(staff):
    long_ago = timezone.now() - timedelta(days=settings.COMMAND_RETENTION_DAYS + 1)
    CommandRecord.objects.bulk_create(
        CommandRecord(
            type="restock-product",
            user=staff,
            payload={"product_id": str(uuid4()), "quantity": 1},
            request_hash="-",
            status="succeeded",
            finished_at=long_ago,
        )
        for _ in range(25)
    )

    with CaptureQueriesContext(connection) as seen:
        assert purge_finished_commands(batch_size=10) == 25

    deletes = [
        q["sql"] for q in seen.captured_queries if q["sql"].startswith("\nDELETE")
    ]
    assert len(deletes) == 3
    assert not CommandRecord.objects.exists()


def test_beat_runs_the_purge_task():
    from commands_app.tasks import purge_finished_task
    from config.celery_app import app

    entries = [
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "commands.purge_finished"
    ]
    assert entries
    assert purge_finished_task.name == "commands.purge_finished"
    assert "commands.purge_finished" in app.tasks
    assert retention.retention() == timedelta(days=30)
