"""Effects: written with their events, delivered in order, retried, parked, retried
by an operator; and the LISTEN/NOTIFY relay that drains them.

On the real PostgreSQL. The kinds here are test kinds on product events: the
shared worker's relay does not know them, so only this process delivers them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import timedelta
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import relays
from commands_app import effects, eventstore, outbox
from commands_app.domain.events import ProductRegistered, ProductRestocked
from commands_app.eventstore import NewEvents, RecordedEvent
from commands_app.models import Effect, EffectStatus
from tests.conftest import make_user
from tests.support.flushes import flushes
from tests.support.processes import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

RESTOCKED = ProductRestocked.type_name


class Stopping(BaseException):
    """What a worker's shutdown raises through a delivery (not an Exception)."""


class Recorder:
    """A perform function that records its calls and fails while told to."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.failing: set[int] = set()
        self.slow: dict[int, float] = {}
        self.stopping: set[int] = set()

    def __call__(self, effect: Effect, event: RecordedEvent) -> None:
        self.calls.append((effect.stream_id, event.data["quantity"]))
        time.sleep(self.slow.get(event.data["quantity"], 0))
        if event.data["quantity"] in self.stopping:
            raise Stopping
        if event.data["quantity"] in self.failing:
            raise ConnectionError("the other side is down")


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recording = Recorder()
    monkeypatch.setattr(outbox, "KINDS", {})
    outbox.register(
        outbox.EffectKind(
            name="test-note",
            event_types=frozenset({RESTOCKED}),
            perform=recording,
            applies=lambda data: data["quantity"] < 100,
        )
    )
    return recording


@pytest.fixture(autouse=True)
def _claims_start_at_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new relay would: its first claim takes one effect."""
    monkeypatch.setattr(effects.CLAIM_SIZE, "size", 1)


def claim_one() -> Effect | None:
    """Claim the next due effect alone, as a relay's first claim does."""
    claimed = effects.claim_many(1)
    return claimed[0] if claimed else None


def claims_in(queries: CaptureQueriesContext) -> int:
    return sum("WITH claimed AS" in q["sql"] for q in queries.captured_queries)


def restock(product_id: Any, *quantities: int) -> list[int]:
    """Register a product if needed and append restocks, one transaction each."""
    stream = f"product-{product_id}"
    version = len(eventstore.load_streams([stream])[stream])
    positions = []
    if not version:
        with transaction.atomic():
            eventstore.append(
                [
                    NewEvents(
                        stream,
                        0,
                        (
                            ProductRegistered(
                                product_id=product_id,
                                sku=f"S-{product_id}",
                                name="x",
                                price_cents=1,
                                initial_stock=0,
                            ),
                        ),
                    )
                ],
                metadata={},
            )
        version = 1
    for quantity in quantities:
        with transaction.atomic():
            positions += eventstore.append(
                [
                    NewEvents(
                        stream,
                        version,
                        (ProductRestocked(product_id=product_id, quantity=quantity),),
                    )
                ],
                metadata={"traceparent": ""},
            )
        version += 1
    return positions


def due_now() -> None:
    Effect.objects.filter(status=EffectStatus.PENDING).update(due_at=timezone.now())


def test_an_effect_is_written_with_its_event_and_never_for_a_rolled_back_one(
    recorder: Recorder,
) -> None:
    product = uuid4()
    (position,) = restock(product, 3)
    with contextlib.suppress(RuntimeError), transaction.atomic():
        restock(product, 4)
        raise RuntimeError("rolled back")
    restock(product, 500)  # not an effect: `applies` says no
    (effect,) = Effect.objects.all()
    assert (effect.kind, effect.event_position, effect.status) == (
        "test-note",
        position,
        EffectStatus.PENDING,
    )
    assert effect.idempotency_key == f"test-note:event:{position}"
    assert effects.drain_once() == 1
    assert recorder.calls == [(f"product-{product}", 3)]
    effect.refresh_from_db()
    assert effect.status == EffectStatus.DONE
    assert effects.drain_once() == 0


def test_effects_of_one_stream_wait_behind_a_failing_one_while_others_go_on(
    recorder: Recorder,
) -> None:
    first, second = uuid4(), uuid4()
    restock(first, 1, 2, 3)
    restock(second, 7)
    recorder.failing = {1}
    effects.drain_once()
    # The first product's later effects wait; the second product's ran.
    assert recorder.calls == [(f"product-{first}", 1), (f"product-{second}", 7)]
    recorder.failing = set()
    due_now()
    effects.drain_once()
    assert [q for s, q in recorder.calls if s == f"product-{first}"] == [1, 1, 2, 3]


def test_one_claim_takes_the_first_due_effect_of_each_stream_in_order(
    recorder: Recorder,
) -> None:
    first, second, third = uuid4(), uuid4(), uuid4()
    restock(first, 1, 2)
    restock(second, 3)
    restock(third, 4)
    claimed = effects.claim_many(16)
    assert [effects.deciding_event(e).data["quantity"] for e in claimed] == [1, 3, 4]
    assert all(hasattr(effect, "deciding_event") for effect in claimed)
    assert {effect.attempts for effect in claimed} == {1}
    # The first product's second effect waits behind its first, claimed now.
    assert effects.claim_many(16) == []
    assert effects.deliver_claimed(claimed) == 3
    assert effects.drain_once() == 1
    assert [q for _, q in recorder.calls] == [1, 3, 4, 2]


def test_claims_take_more_effects_while_they_are_delivered_fast(
    recorder: Recorder,
) -> None:
    for quantity in range(6):
        restock(uuid4(), quantity)
    with CaptureQueriesContext(connection) as queries:
        assert effects.relay_drain() == 0  # all delivered: nothing to come back for
    # Claims of one, two, then four (three were left), and one that found none.
    assert claims_in(queries) == 4
    for quantity in range(10, 16):
        restock(uuid4(), quantity)
    with CaptureQueriesContext(connection) as queries:
        assert effects.drain_once() == 6
    # Eight at a time now: one claim for the six, one that finds none left.
    assert claims_in(queries) == 2
    assert sorted(q for _, q in recorder.calls) == [*range(6), *range(10, 16)]
    assert set(Effect.objects.values_list("status", flat=True)) == {"done"}


def test_slow_claims_go_back_to_one_effect_at_a_time(recorder: Recorder) -> None:
    # A gateway's calls: other workers' relays must be able to take the rest.
    effects.CLAIM_SIZE.size = 2
    recorder.slow = dict.fromkeys((1, 2, 3, 4), effects.FAST_CLAIM_SECONDS + 0.02)
    for quantity in (1, 2, 3, 4):
        restock(uuid4(), quantity)
    with CaptureQueriesContext(connection) as queries:
        assert effects.drain_once() == 4
    # Two, then one and one (each slow), and one that found none.
    assert claims_in(queries) == 4
    assert effects.CLAIM_SIZE.size == 1


def test_effects_not_started_within_half_a_lease_are_given_back(
    recorder: Recorder, settings: Any
) -> None:
    settings.EFFECTS_LEASE_SECONDS = 1
    recorder.slow = {1: 0.6}  # past half the lease: the others are not started
    for quantity in (1, 2, 3):
        restock(uuid4(), quantity)
    claimed = effects.claim_many(16)
    assert effects.deliver_claimed(claimed) == 1
    given_back = Effect.objects.filter(status=EffectStatus.PENDING).order_by("id")
    # Claimable at once; the attempt stays counted (the fence only goes up)
    # but is not charged to the attempt budget.
    assert [
        (e.attempts, e.retried_at_attempt, e.lease_expires_at) for e in given_back
    ] == [(1, 1, None), (1, 1, None)]
    assert effects.drain_once() == 2
    assert [q for _, q in recorder.calls] == [1, 2, 3]
    assert list(Effect.objects.order_by("id").values_list("attempts", flat=True)) == [
        1,
        2,
        2,
    ]


def test_a_delivery_raising_out_of_the_relay_gives_the_rest_of_its_claim_back(
    recorder: Recorder,
) -> None:
    recorder.stopping = {2}
    for quantity in (1, 2, 3):
        restock(uuid4(), quantity)
    with pytest.raises(Stopping):
        effects.drain_once()
    rows = list(
        Effect.objects.order_by("id").values_list(
            "status", "attempts", "retried_at_attempt", "lease_expires_at"
        )
    )
    assert rows[0] == ("done", 1, 0, None)
    # The interrupted one may have reached the other side: it keeps its lease.
    assert rows[1][:3] == ("pending", 1, 0)
    assert rows[1][3] is not None
    # The one not started is claimable again at once, its budget untouched.
    assert rows[2] == ("pending", 1, 1, None)
    recorder.stopping = set()
    assert effects.drain_once() == 1
    assert [q for _, q in recorder.calls] == [1, 2, 3]


def test_a_failing_effect_backs_off_then_parks_and_an_operator_retries_it(
    recorder: Recorder, settings: Any
) -> None:
    settings.EFFECTS_MAX_ATTEMPTS = 3
    settings.EFFECTS_BACKOFF_BASE_SECONDS = 30
    settings.EFFECTS_BACKOFF_MAX_SECONDS = 600
    product = uuid4()
    restock(product, 5, 6)
    recorder.failing = {5}
    assert effects.drain_once() == 1
    failed = Effect.objects.order_by("id").first()
    assert failed is not None
    assert failed.status == EffectStatus.PENDING
    assert failed.attempts == 1
    assert "ConnectionError" in failed.last_error
    delay = (failed.due_at - timezone.now()).total_seconds()
    assert 25 < delay <= 30
    assert effects.drain_once() == 0  # not due yet, and the next one waits
    for attempts in (2, 3):
        due_now()
        effects.drain_once()
        failed.refresh_from_db()
        assert failed.attempts == attempts
    assert failed.status == EffectStatus.PARKED
    assert effects.backoff(2) == 60
    due_now()
    assert effects.drain_once() == 0  # parked: it and the one behind it wait
    assert [q for _, q in recorder.calls] == [5, 5, 5]

    recorder.failing = set()
    staff = make_user("effects-operator", staff=True)
    staff.is_superuser = True
    staff.save()
    client = Client()
    client.force_login(staff)
    listing = client.get("/admin/commands_app/effect/?status=parked")
    assert listing.status_code == 200
    assert str(failed.pk) in listing.content.decode()
    response = client.post(
        "/admin/commands_app/effect/",
        {"action": "retry", "_selected_action": [failed.pk]},
    )
    assert response.status_code == 302
    failed.refresh_from_db()
    # The attempt number only goes up (it fences earlier attempts); the
    # budget starts again from the retry.
    assert (failed.status, failed.attempts, failed.retried_at_attempt) == (
        EffectStatus.PENDING,
        3,
        3,
    )
    effects.drain_once()
    failed.refresh_from_db()
    assert failed.attempts == 4
    assert [q for _, q in recorder.calls] == [5, 5, 5, 5, 6]
    assert set(Effect.objects.values_list("status", flat=True)) == {"done"}


def test_a_claimed_effect_is_not_claimed_again_until_its_lease_runs_out(
    recorder: Recorder,
) -> None:
    restock(uuid4(), 8)
    effect = claim_one()
    assert effect is not None
    assert effect.attempts == 1
    assert claim_one() is None
    Effect.objects.filter(pk=effect.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    again = claim_one()
    assert again is not None
    assert again.attempts == 2
    # The first attempt wakes up late: fenced off, and the row stays pending.
    with pytest.raises(effects.LostLeaseError):
        effects.complete(effect)
    assert effects.deliver(again)
    assert Effect.objects.get(pk=effect.pk).status == EffectStatus.DONE


def test_an_attempt_failing_after_its_lease_was_taken_over_is_fenced_off(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    # E.g. a gateway timeout seen by a worker that was paused past its lease.
    restock(uuid4(), 7)
    recorder.failing = {7}
    late = claim_one()
    assert late is not None
    Effect.objects.filter(pk=late.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    again = claim_one()
    assert again is not None
    with caplog.at_level("WARNING", logger="commands_app.effects"):
        assert not effects.deliver(late)
    assert f"effect {late.id} attempt 1 was fenced off" in caplog.text
    row = Effect.objects.get(pk=late.pk)
    # The failure is not recorded over the delivery that holds the lease now.
    assert (row.attempts, row.last_error) == (2, "")


def test_holding_the_drain_lock_pauses_every_relay(recorder: Recorder) -> None:
    restock(uuid4(), 9)
    with psycopg.connect(_dsn(), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [effects.DRAIN_LOCK])
        assert effects.drain_once() == 0
        other.execute("SELECT pg_advisory_unlock(%s)", [effects.DRAIN_LOCK])
    assert effects.drain_once() == 1


def _dsn() -> str:
    params = connection.get_connection_params()
    return (
        f"host={params['host']} port={params['port']} "
        f"dbname={params['dbname']} user={params['user']}"
    )


def test_the_relay_drains_when_notified_and_coalesces_wake_ups() -> None:
    drained: list[float] = []

    def drain() -> int:
        drained.append(time.monotonic())
        return 0

    relay_ = relays.Relay("test_relay_channel", drain, poll_seconds=30)
    relay_.start()
    try:
        wait_until(lambda: len(drained) >= 1, timeout=5)
        time.sleep(0.2)
        before = len(drained)
        with (
            psycopg.connect(_dsn(), autocommit=True) as other,
            other.transaction(),
        ):
            for _ in range(5):
                other.execute("SELECT pg_notify('test_relay_channel', '')")
        wait_until(lambda: len(drained) > before, timeout=5)
        time.sleep(0.3)
        # Five notifications of one commit: one or two drains, not five.
        assert len(drained) - before <= 2
    finally:
        relay_.stop()
    assert relay_.thread is not None
    assert not relay_.thread.is_alive()


def test_the_relay_polls_when_no_notification_comes() -> None:
    drained = threading.Event()
    calls: list[int] = []

    def drain() -> int:
        calls.append(1)
        if len(calls) >= 3:
            drained.set()
        return 0

    relay_ = relays.Relay("test_relay_quiet", drain, poll_seconds=0.1).start()
    try:
        assert drained.wait(5)
    finally:
        relay_.stop()


def test_a_claim_brings_its_deciding_event_and_an_effect_without_one_fails(
    recorder: Recorder,
) -> None:
    product = uuid4()
    [position] = restock(product, 3)
    orphan = f"product-{uuid4()}"
    with transaction.atomic():
        outbox.schedule([outbox.Appended(10**12, orphan, RESTOCKED, {"quantity": 1})])

    first = claim_one()
    assert first is not None
    assert first.event_position == position
    # Read in the claiming statement: delivering it reads no event again.
    assert hasattr(first, "deciding_event")
    event = effects.deciding_event(first)
    assert event.data["quantity"] == 3
    assert event.stream_id == f"product-{product}"
    assert effects.deliver(first)

    # An effect whose event does not exist is claimed all the same, and fails
    # (retried, then parked): it is not passed over, nor does it block the drain.
    second = claim_one()
    assert second is not None
    assert second.stream_id == orphan
    assert not hasattr(second, "deciding_event")
    assert not effects.deliver(second)
    second.refresh_from_db()
    assert "no event at position" in second.last_error
    assert recorder.calls == [(f"product-{product}", 3)]


def test_claims_and_completions_commit_without_waiting_for_the_disk(
    recorder: Recorder,
) -> None:
    """A lease or a `done` lost in a crash means one more delivery: no flush each."""
    for _ in range(20):
        restock(uuid4(), 1)
    due_now()
    with flushes() as count:
        for _ in range(20):
            effect = claim_one()
            assert effect is not None
            effects.complete(effect)
    assert claim_one() is None
    assert count.value < 10


def test_a_completion_in_a_callers_transaction_leaves_its_commit_waiting(
    recorder: Recorder,
) -> None:
    restock(uuid4(), 1)
    due_now()
    effect = claim_one()
    assert effect is not None
    with transaction.atomic(), connection.cursor() as cursor:
        effects.complete(effect)
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
