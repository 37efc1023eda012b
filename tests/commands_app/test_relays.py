"""The pipeline's relays: commits wake the projector, command rows are the outbox.

The projector relay (projections/runner.py) is woken by the NOTIFY that
`eventstore.append` sends in the appending transaction: no task, no broker.
The command relay (commands_app/acceptance.py `publish_pending`) publishes the
commands requests stored; a command stored while no relay runs is published
when one comes back. Both poll as a safety net for a lost notification.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from celery.app.task import Task
from django.db import connection, transaction
from django.utils import timezone

import relays
from commands_app import acceptance, eventstore
from commands_app.eventstore import NewEvents
from commands_app.models import CommandRecord
from commands_app.registry import IMPORT_PRODUCTS
from projections import runner
from projections.models import Checkpoint, ProductCatalogue
from tests.support.commands import final_status, submit
from tests.support.processes import wait_until

from .given import registered

pytestmark = [
    pytest.mark.integration,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


def _dsn() -> str:
    params = connection.get_connection_params()
    return (
        f"host={params['host']} port={params['port']} "
        f"dbname={params['dbname']} user={params['user']}"
    )


def append_product() -> tuple[Any, int]:
    """Commit one new product's registration; return its id and position."""
    event = registered(stock=7)
    with transaction.atomic():
        [position] = eventstore.append(
            [NewEvents(f"product-{event.product_id}", 0, (event,))], metadata={}
        )
    return event.product_id, position


class Counting:
    """A drain that counts its calls and runs `inner` (the projector's)."""

    def __init__(self, inner: Any = None) -> None:
        self.calls = 0
        self.inner = inner
        self.called = threading.Event()

    def __call__(self) -> int:
        self.calls += 1
        self.called.set()
        return self.inner() if self.inner else 0


def test_an_appending_commit_wakes_the_projector_relay_without_a_task() -> None:
    drain = Counting(runner.relay_drain)
    # A poll far longer than the test: only the commit's NOTIFY can wake it.
    projector = relays.Relay(eventstore.PROJECTIONS_CHANNEL, drain, poll_seconds=60)
    projector.start()
    try:
        wait_until(lambda: drain.calls >= 1, timeout=10)  # the start's drain
        time.sleep(0.3)
        before = drain.calls
        product_id, _position = append_product()
        wait_until(lambda: drain.calls > before, timeout=10)
        wait_until(
            lambda: ProductCatalogue.objects.filter(id=product_id).exists(),
            timeout=10,
        )
    finally:
        projector.stop()
    assert ProductCatalogue.objects.get(id=product_id).available == 7


def test_a_rolled_back_append_wakes_nobody() -> None:
    drain = Counting()
    projector = relays.Relay(eventstore.PROJECTIONS_CHANNEL, drain, poll_seconds=60)
    projector.start()
    try:
        wait_until(lambda: drain.calls >= 1, timeout=10)
        time.sleep(0.3)
        before = drain.calls
        event = registered()
        with transaction.atomic():
            eventstore.append(
                [NewEvents(f"product-{event.product_id}", 0, (event,))], metadata={}
            )
            transaction.set_rollback(True)
        time.sleep(1.0)
        assert drain.calls == before
    finally:
        projector.stop()


def test_a_lost_notification_is_caught_up_by_the_poll() -> None:
    # Listening on a channel nobody notifies: every wake-up is lost.
    drain = Counting(runner.relay_drain)
    projector = relays.Relay("projections_lost", drain, poll_seconds=0.3).start()
    try:
        product_id, position = append_product()
        checkpoint = eventstore.position_of(position)
        assert checkpoint is not None
        wait_until(
            lambda: ProductCatalogue.objects.filter(id=product_id).exists(),
            timeout=10,
        )
    finally:
        projector.stop()
    for row in Checkpoint.objects.all():
        assert (row.tx_id, row.position) >= (checkpoint.tx_id, checkpoint.position)


def test_the_request_stores_the_command_and_notifies_instead_of_publishing(
    staff_api: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.COMMANDS_RELAY_ENABLED = True
    published: list[Any] = []
    monkeypatch.setattr(acceptance, "enqueue", published.append)
    with psycopg.connect(_dsn(), autocommit=True) as listener:
        listener.execute(f'LISTEN "{acceptance.CHANNEL}"')
        response = submit(
            staff_api,
            "register-product",
            {"sku": "RELAY-1", "name": "Mug", "price_cents": 1, "initial_stock": 1},
        )
        assert response.status_code == 202
        woken = list(listener.notifies(timeout=5, stop_after=1))
    assert [note.channel for note in woken] == [acceptance.CHANNEL]
    assert published == []  # no broker call in the request


@pytest.mark.worker
def test_a_command_stored_while_no_relay_runs_is_published_when_one_comes_back(
    worker: Any, staff_api: Any, settings: Any
) -> None:
    settings.COMMANDS_RELAY_ENABLED = True
    with psycopg.connect(_dsn(), autocommit=True) as operator:
        # Every command relay (the worker's) is paused while this is held.
        operator.execute("SELECT pg_advisory_lock(%s)", [acceptance.PUBLISH_LOCK])
        try:
            command_id = submit(
                staff_api,
                "register-product",
                {"sku": "RELAY-2", "name": "Mug", "price_cents": 1, "initial_stock": 2},
            ).json()["id"]
            time.sleep(2.5)  # more than two of the relay's polls
            record = CommandRecord.objects.get(pk=command_id)
            assert (record.status, record.publish_pending) == ("accepted", True)
        finally:
            operator.execute("SELECT pg_advisory_unlock(%s)", [acceptance.PUBLISH_LOCK])
    assert final_status(staff_api, command_id)["status"] == "succeeded"
    assert not CommandRecord.objects.get(pk=command_id).publish_pending


def test_a_failed_publish_leaves_the_rest_pending(
    staff: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Any] = []

    def apply_async(self: Any, args: Any, **kwargs: Any) -> None:
        if len(sent) == 1:
            raise ConnectionError("broker gone")
        sent.append(args)

    monkeypatch.setattr(Task, "apply_async", apply_async)
    # Uncommitted rows: no other relay (a worker's) can see them.
    with transaction.atomic():
        records = [
            CommandRecord.objects.create(
                type="register-product",
                user=staff,
                payload={},
                request_hash="x",
                publish_pending=True,
            )
            for _ in range(3)
        ]
        with pytest.raises(ConnectionError):
            acceptance.publish_pending()
        pending = CommandRecord.objects.filter(
            pk__in=[r.pk for r in records], publish_pending=True
        ).count()
        transaction.set_rollback(True)
    # One went out; the two not published are pending again, for the next drain.
    assert (len(sent), pending) == (1, 2)


def test_a_claim_is_published_as_chunks_spread_over_the_workers(
    settings: Any,
) -> None:
    settings.COMMANDS_PER_TASK = 16
    settings.COMMANDS_TASKS_PER_CLAIM = 4
    claimed = [(str(n), "place-order") for n in range(40)]
    claimed.insert(3, ("import", IMPORT_PRODUCTS.name))
    chunks = acceptance.task_chunks(claimed)
    assert chunks[0] == [("import", IMPORT_PRODUCTS.name)]
    assert [len(chunk) for chunk in chunks[1:]] == [10, 10, 10, 10]
    assert [item for chunk in chunks[1:] for item in chunk] == [
        item for item in claimed if item[1] != IMPORT_PRODUCTS.name
    ]
    # A lone command is a task of its own; a large claim is capped per task.
    assert acceptance.task_chunks([("1", "place-order")]) == [[("1", "place-order")]]
    many = acceptance.task_chunks([(str(n), "place-order") for n in range(200)])
    assert {len(chunk) for chunk in many} == {16, 8}


def test_a_batch_runs_every_command_even_after_one_fails(
    staff: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from commands_app import execution

    ran: list[Any] = []

    def execute(command_id: Any) -> None:
        ran.append(command_id)
        if len(ran) == 1:
            raise RuntimeError("first one breaks")

    monkeypatch.setattr(execution, "execute", execute)
    ids = [uuid4() for _ in range(3)]
    with pytest.raises(RuntimeError):
        execution.execute_all(ids)
    assert ran == ids


def _pending(staff: Any, types: list[str]) -> list[CommandRecord]:
    """Store pending commands of `types`, oldest first (uncommitted by the caller)."""
    start = timezone.now() - timedelta(minutes=1)
    return [
        CommandRecord.objects.create(
            type=kind,
            user=staff,
            payload={},
            request_hash="x",
            publish_pending=True,
            created_at=start + timedelta(seconds=n),
        )
        for n, kind in enumerate(types)
    ]


def test_a_command_task_then_runs_the_pending_commands_but_not_imports(
    staff: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    from commands_app import execution

    settings.COMMANDS_TAKEOVER_SECONDS = 30.0
    settings.COMMANDS_TAKEOVER_BATCH = 2
    ran: list[Any] = []
    monkeypatch.setattr(execution, "execute", ran.append)
    given = uuid4()
    # Uncommitted rows: no other relay (a worker's) can see them.
    with transaction.atomic():
        records = _pending(
            staff, ["place-order"] * 3 + [IMPORT_PRODUCTS.name] + ["cancel-order"] * 2
        )
        taken = execution.execute_then_pending([given])
        pending = set(
            CommandRecord.objects.filter(
                pk__in=[r.pk for r in records], publish_pending=True
            ).values_list("type", flat=True)
        )
        transaction.set_rollback(True)
    # The task's own command first, then the pending ones, oldest first.
    others = [r.pk for r in records if r.type != IMPORT_PRODUCTS.name]
    assert (taken, ran) == (5, [given, *others])
    assert pending == {IMPORT_PRODUCTS.name}  # an import keeps its own task


def test_a_command_task_takes_pending_commands_over_only_within_its_bound(
    staff: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    from commands_app import execution

    settings.COMMANDS_TAKEOVER_BATCH = 1
    ran: list[Any] = []

    def slow(command_id: Any) -> None:
        ran.append(command_id)
        time.sleep(0.2)

    monkeypatch.setattr(execution, "execute", slow)
    with transaction.atomic():
        records = _pending(staff, ["place-order"] * 5)
        settings.COMMANDS_TAKEOVER_SECONDS = 0  # off: the relay publishes them
        assert execution.execute_then_pending([]) == 0
        settings.COMMANDS_TAKEOVER_SECONDS = 0.3
        taken = execution.execute_then_pending([])
        left = CommandRecord.objects.filter(
            pk__in=[r.pk for r in records], publish_pending=True
        ).count()
        transaction.set_rollback(True)
    # A claim at 0 s and at 0.2 s; at 0.4 s the bound has passed.
    assert (taken, ran, left) == (2, [records[0].pk, records[1].pk], 3)


def test_the_sweeper_leaves_a_command_pending_for_the_relays(staff: Any) -> None:
    from commands_app import sweeper

    an_hour_ago = timezone.now() - timedelta(hours=1)
    with transaction.atomic():
        [record] = _pending(staff, ["place-order"])
        mine = CommandRecord.objects.filter(pk=record.pk)
        mine.update(enqueued_at=an_hour_ago)  # stored an hour ago, never published
        pending_stuck = record.pk in {r.pk for r in sweeper.stuck_commands()}
        mine.update(publish_pending=False)  # published an hour ago, never run
        published_stuck = record.pk in {r.pk for r in sweeper.stuck_commands()}
        transaction.set_rollback(True)
    assert (pending_stuck, published_stuck) == (False, True)


def test_a_relay_notified_while_it_drains_waits_its_coalescing_time_first() -> None:
    channel = "test_relay_coalesce"

    def notify() -> None:
        with psycopg.connect(_dsn(), autocommit=True) as waker:
            waker.execute("SELECT pg_notify(%s, '')", [channel])

    commits_while_draining = [True]

    def drain() -> int:
        if commits_while_draining[0]:
            notify()
            time.sleep(0.1)  # a drain that outlasts the commit's notification
        return 0

    relay = relays.Relay(channel, drain, poll_seconds=60, coalesce_seconds=0.6)
    try:
        started = time.monotonic()
        relay.run_once()  # notified while it drained: it waits, then returns
        busy = time.monotonic() - started
        commits_while_draining[0] = False
        later = threading.Timer(0.2, notify)
        later.start()
        started = time.monotonic()
        relay.run_once()  # a quiet drain: the next commit wakes it at once
        at_rest = time.monotonic() - started
        later.join()
    finally:
        relay.close()
    assert 0.7 <= busy < 5
    assert 0.2 <= at_rest < 0.6


def test_a_held_relay_drains_only_once_a_poll_interval_until_let_go() -> None:
    drain = Counting()
    held = threading.Event()
    held.set()
    relay = relays.Relay("test_relay_held", drain, poll_seconds=0.5, held=held.is_set)
    try:
        relay.run_once(wait=False)  # its first drain, as a relay (re)starts
        assert drain.calls == 1
        started = time.monotonic()
        assert relay.run_once() == 0
        # Held: asked again soon, not after the poll interval; no drain.
        assert time.monotonic() - started < 0.25
        assert drain.calls == 1
        time.sleep(0.5)
        relay.run_once(wait=False)  # held for a whole interval: the net drains
        assert drain.calls == 2
        held.clear()
        relay.run_once(wait=False)
        assert drain.calls == 3
    finally:
        relay.close()


@pytest.mark.parametrize(
    ("running", "held"),
    [
        (["commands.execute", "commands.execute_many"], True),
        (["commands.execute_many", "commands.execute_import"], True),
        (["commands.execute"], False),  # a process is free: publish to it
        (["commands.execute_import", "commands.execute_import"], False),
        ([], False),
    ],
)
def test_the_command_relay_is_held_while_every_process_runs_a_task_that_takes_over(
    monkeypatch: pytest.MonkeyPatch, running: list[str], held: bool
) -> None:
    from celery.worker import state

    from commands_app.relay import all_busy_taking_over

    monkeypatch.setattr(
        state, "active_requests", [SimpleNamespace(name=name) for name in running]
    )
    assert all_busy_taking_over(2)() is held


def test_scheduled_effects_notify_the_effects_relays_once_and_only_when_new(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from commands_app import outbox

    kind = outbox.EffectKind(
        name="test-wake", event_types=frozenset({"test.woken.v1"}), perform=print
    )
    monkeypatch.setitem(outbox.KINDS, kind.name, kind)
    appended = [outbox.Appended(1, "test-1", "test.woken.v1", {})]
    with psycopg.connect(_dsn(), autocommit=True) as listener:
        listener.execute(f'LISTEN "{outbox.CHANNEL}"')
        with transaction.atomic():
            assert outbox.schedule(appended) == 1
        assert list(listener.notifies(timeout=5, stop_after=1))
        # The same effect again (same idempotency key): no row, no wake-up.
        with transaction.atomic():
            outbox.schedule(appended)
        assert not list(listener.notifies(timeout=0.5, stop_after=1))
