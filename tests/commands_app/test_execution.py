"""Claims, leases and fencing: a command finishes exactly once, whatever dies."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from kombu import Connection, Exchange, Queue

from commands_app import acceptance, eventstore, execution, sweeper
from commands_app.domain.events import ProductRestocked
from commands_app.eventstore import ConcurrencyError, NewEvents
from commands_app.models import CommandRecord, StoredEvent
from tests.support.commands import register_product, submit
from tests.support.flushes import flushes
from tests.support.processes import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


def stored_command(user, **fields) -> CommandRecord:
    """Store a command without enqueueing it, so only the test runs it."""
    pid = str(uuid4())
    return CommandRecord.objects.create(
        type="register-product",
        user=user,
        payload={
            "product_id": pid,
            "sku": f"S-{pid[:8]}",
            "name": "Mug",
            "price_cents": 100,
            "initial_stock": 1,
        },
        aggregate_id=pid,
        request_hash="-",
        **fields,
    )


def expire_lease(record: CommandRecord) -> None:
    CommandRecord.objects.filter(pk=record.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_claim_is_held_until_its_lease_runs_out(staff):
    record = stored_command(staff)
    assert execution.claim(record.id) == 1
    assert execution.claim(record.id) is None
    expire_lease(record)
    assert execution.claim(record.id) == 2
    record.refresh_from_db()
    assert record.status == "running"
    assert record.attempt == 2


def test_an_attempt_whose_lease_was_taken_over_cannot_commit(staff):
    record = stored_command(staff)
    assert execution.claim(record.id) == 1
    expire_lease(record)
    assert execution.claim(record.id) == 2
    stale = CommandRecord.objects.select_related("user").get(pk=record.id)
    with pytest.raises(execution.LostClaimError):
        execution._decide_and_commit(stale, 1)
    assert StoredEvent.objects.count() == 0
    with pytest.raises(execution.LostClaimError):
        execution.finish(stale, 1, status="succeeded")
    assert CommandRecord.objects.get(pk=record.id).status == "running"
    execution._decide_and_commit(stale, 2)
    record.refresh_from_db()
    assert record.status == "succeeded"
    assert StoredEvent.objects.filter(metadata__command_id=str(record.id)).count() == 1
    # The late attempt wakes up again: still nothing to commit.
    with pytest.raises(execution.LostClaimError):
        execution.finish(stale, 1, status="failed")
    execution.execute(record.id)  # a redelivered task finds nothing to do
    assert StoredEvent.objects.count() == 1


def test_a_command_crashing_every_worker_is_failed_as_worker_lost(
    worker, staff, staff_api
):
    record = stored_command(
        staff,
        status="running",
        attempt=settings.COMMAND_MAX_ATTEMPTS,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert sweeper.sweep() == 1
    wait_until(lambda: CommandRecord.objects.get(pk=record.id).is_final)
    status = staff_api.get(f"/api/commands/{record.id}/").json()
    assert status["status"] == "failed"
    assert status["error"]["code"] == "worker_lost"
    assert status["error"]["details"] == {"attempts": settings.COMMAND_MAX_ATTEMPTS}
    assert StoredEvent.objects.count() == 0
    # The queue keeps flowing.
    register_product(staff_api)


def test_a_redriven_command_counts_attempts_on_so_old_attempts_stay_fenced(
    staff, monkeypatch
):
    # Claims are this test's: the re-drive publishes no task for a worker.
    monkeypatch.setattr(sweeper, "enqueue", lambda record: None)
    # Failed as worker_lost after every attempt; staff re-drive it from the admin.
    spent = settings.COMMAND_MAX_ATTEMPTS + 1
    record = stored_command(
        staff,
        status="failed",
        attempt=spent,
        error={"code": "worker_lost", "message": "-", "details": {}},
        finished_at=timezone.now(),
    )
    staff.user_permissions.add(
        Permission.objects.get(codename="view_commandrecord"),
        Permission.objects.get(codename="change_commandrecord"),
    )
    browser = Client()
    browser.force_login(staff)
    browser.post(
        "/admin/commands_app/commandrecord/",
        {"action": "redrive", "_selected_action": [str(record.pk)]},
    )
    record.refresh_from_db()
    assert (record.status, record.attempt, record.finished_at) == (
        "accepted",
        spent,
        None,
    )

    # The next claim is a number never handed out before: a worker still
    # holding an earlier one (here 1) cannot commit.
    assert execution.claim(record.id) == spent + 1
    stale = CommandRecord.objects.select_related("user").get(pk=record.id)
    with pytest.raises(execution.LostClaimError):
        execution.finish(stale, 1, status="succeeded")
    # The attempts allowed count from the re-drive: the command runs.
    expire_lease(record)
    execution.execute(record.id)
    record.refresh_from_db()
    assert (record.status, record.attempt) == ("succeeded", spent + 2)
    assert StoredEvent.objects.count() == 1


def test_a_command_accepted_but_never_enqueued_is_redriven_by_the_sweeper(
    worker, staff, staff_api, monkeypatch, settings
):
    # Published by the request on commit (relay off), and that publish is lost.
    settings.COMMANDS_RELAY_ENABLED = False
    monkeypatch.setattr(acceptance, "enqueue", lambda record: None)
    response = submit(
        staff_api,
        "register-product",
        {"sku": "LOST-1", "name": "Lost", "price_cents": 1, "initial_stock": 1},
    )
    command_id = response.json()["id"]

    def redriven():
        sweeper.sweep()
        return CommandRecord.objects.get(pk=command_id).is_final

    wait_until(redriven, timeout=15, interval=0.2)
    assert CommandRecord.objects.get(pk=command_id).status == "succeeded"


def test_the_sweeper_leaves_a_published_command_to_the_tasks_waiting_in_its_queue(
    staff, settings
):
    """Re-driving it there would put a second task behind the same backlog.

    On either broker (`make test-rabbitmq` runs it on RabbitMQ): the queue of
    register-product is one that no worker consumes, so that the task put in
    it stays until the test deletes the queue.
    """
    name = f"sweeper-probe-{uuid4().hex[:8]}"
    settings.CELERY_TASK_ROUTES = {
        **settings.CELERY_TASK_ROUTES,
        "commands.execute": {"queue": name},
    }
    an_hour_ago = timezone.now() - timedelta(hours=1)
    published = stored_command(staff, enqueued_at=an_hour_ago)
    running = stored_command(
        staff, status="running", attempt=1, lease_expires_at=an_hour_ago
    )

    def stuck() -> set[UUID]:
        return {record.pk for record in sweeper.stuck_commands()}

    assert stuck() >= {published.pk, running.pk}
    queue = Queue(name, Exchange(name, "direct"), routing_key=name)
    with Connection(str(settings.CELERY_BROKER_URL)) as broker:
        broker.Producer().publish(
            {"waiting": 1}, exchange=queue.exchange, routing_key=name, declare=[queue]
        )
        try:
            # RabbitMQ counts a publish sent without confirms a moment later.
            wait_until(lambda: "register-product" in sweeper.backlogged_types())
            waiting = stuck()
        finally:
            queue(broker.default_channel).delete()
    assert running.pk in waiting
    assert published.pk not in waiting
    assert stuck() >= {published.pk, running.pk}


# A worker killed in the middle of a payment: the charge is an effect now, see
# tests/reliability/test_payments.py (killed between the charge and its append).


def test_two_workers_delivered_the_same_command_commit_it_once(staff):
    record = stored_command(staff)
    execution.execute(record.id)
    execution.execute(record.id)
    record.refresh_from_db()
    assert record.status == "succeeded"
    assert record.attempt == 1
    assert StoredEvent.objects.count() == 1


def waiting_for_a_turn() -> bool:
    with connection.cursor() as cursor:
        # In a transaction, pg_stat_activity is read once unless cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
        )
        return cursor.fetchone()[0] > 0


def test_a_command_that_lost_a_race_decides_again_in_its_turn(staff, monkeypatch):
    """A rival appending between every decision and its append cannot starve it.

    Without the turn, the rival wins every race and the command fails as
    `too_much_contention`; with it, the command's second decision holds the
    stream and the rival, which read the stream before that decision was
    appended, is the one that loses.
    """
    product = stored_command(staff)
    execution.execute(product.id)
    product_id = product.payload["product_id"]
    stream = f"product-{product_id}"
    restock = CommandRecord.objects.create(
        type="restock-product",
        user=staff,
        payload={"product_id": product_id, "quantity": 1},
        aggregate_id=product_id,
        request_hash="-",
    )
    append = eventstore.append
    outcomes: list[str] = []
    rivals: list[threading.Thread] = []

    def rival() -> None:  # another worker, appending as soon as it can
        try:
            version = len(eventstore.load_streams([stream])[stream])
            restocked = ProductRestocked(product_id=UUID(product_id), quantity=5)
            with transaction.atomic():
                append([NewEvents(stream, version, (restocked,))], metadata={})
            outcomes.append("appended")
        except ConcurrencyError:
            outcomes.append("lost")
        finally:
            connection.close()

    def append_after_a_rival(batches: Any, *, metadata: dict[str, Any]) -> Any:
        thread = threading.Thread(target=rival)
        rivals.append(thread)
        thread.start()
        wait_until(lambda: not thread.is_alive() or waiting_for_a_turn(), timeout=10)
        return append(batches, metadata=metadata)

    monkeypatch.setattr(eventstore, "append", append_after_a_rival)
    try:
        execution.execute(restock.id)
    finally:
        for thread in rivals:
            thread.join(20)
    restock.refresh_from_db()
    assert restock.status == "succeeded", restock.error
    assert outcomes == ["appended", "lost"]
    quantities = [
        getattr(event, "quantity", None)
        for event in eventstore.load_streams([stream])[stream]
    ]
    assert quantities == [None, 5, 1]


def test_claims_and_marks_commit_without_waiting_for_the_disk(staff):
    """A claim or a `projected` mark lost in a crash is repaired: no flush each."""
    positions = [10**12 + n for n in range(30)]
    records = [
        stored_command(staff, status="succeeded", position=position)
        for position in positions
    ]
    with flushes() as waited:  # the same kind of write, committed as usual
        for record in records:
            CommandRecord.objects.filter(pk=record.pk).update(status="accepted")
    with flushes() as claims:
        for record in records:
            assert execution.claim_record(record.id) is not None
    CommandRecord.objects.update(status="succeeded")
    with flushes() as marks:
        for position in positions:
            assert len(execution.mark_projected([position])) == 1
    assert waited.value >= 30
    assert claims.value < 10
    assert marks.value < 10


def test_a_claim_in_a_callers_transaction_leaves_its_commit_waiting(staff):
    record = stored_command(staff)
    with transaction.atomic(), connection.cursor() as cursor:
        assert execution.claim_record(record.id) is not None
        assert execution.mark_projected([1]) == []
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
