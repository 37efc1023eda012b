"""A failing projection parks the event, keeps the others going, replays in order."""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from commands_app import eventstore
from projections import dead_letters, rebuild, runner
from projections.dead_letters import discard_dead_letters, replay_dead_letters
from projections.locks import lock_key
from projections.models import Checkpoint, DeadLetter, OrderSummary
from projections.projectors import OrderSummaryProjector
from projections.registry import PROJECTOR_NAMES
from tests.support.processes import wait_until

from .conftest import rows, settle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.usefixtures("fast_retries"),
]


@pytest.fixture
def broken_payment(monkeypatch):
    """Make the order summary fail on every captured payment until it is removed."""

    def fail(self, event, recorded):
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(OrderSummaryProjector, "on_payment_captured", fail)
    return monkeypatch


def test_a_failing_event_parks_and_later_events_of_its_order_wait(
    store, broken_payment
):
    mug = store.product("MUG-1", stock=20)
    stuck = store.order(mug)
    other = store.order(mug, customer=8)
    store.pay(stuck)
    store.ship(stuck)
    store.pay(other)  # fails too: an OrderPaid
    third = store.order(mug, customer=9)

    result = settle()

    assert not result.errors
    letters = {
        (letter.stream_id, letter.event_type): letter.status
        for letter in DeadLetter.objects.all()
    }
    assert letters == {
        # Stored as order.paid.v1, read (and parked) as a captured payment.
        (f"order-{stuck}", "order.payment_captured.v1"): "parked",
        (f"order-{stuck}", "order.shipped.v1"): "waiting",
        (f"order-{other}", "order.payment_captured.v1"): "parked",
    }
    parked = DeadLetter.objects.filter(status="parked").first()
    assert parked is not None
    assert "disk full" in parked.error
    assert parked.attempts == 3
    # The checkpoint moved past them; the other order and projections went on.
    head = store.append_unknown()
    settle()
    assert {c.name: c.position for c in Checkpoint.objects.all()} == dict.fromkeys(
        PROJECTOR_NAMES, head
    )
    assert "parked" in Checkpoint.objects.get(name="order_summary").last_error
    assert OrderSummary.objects.get(id=stuck).status == "placed"
    assert OrderSummary.objects.get(id=third).status == "placed"
    assert rows("customer_order_history")["read_customer_orders"]
    from projections.models import CustomerOrderHistory

    assert CustomerOrderHistory.objects.get(order_id=stuck).status == "shipped"
    # A later event of the stuck order keeps waiting behind the parked one.
    store.cancel(stuck, mug)
    settle()
    assert (
        DeadLetter.objects.filter(stream_id=f"order-{stuck}", status="waiting").count()
        == 2
    )


def test_a_replay_after_the_fault_is_removed_matches_a_rebuild(store, broken_payment):
    mug = store.product("MUG-1", stock=20)
    stuck = store.order(mug)
    store.pay(stuck)
    store.ship(stuck)
    healthy = store.order(mug, customer=8)
    settle()
    assert OrderSummary.objects.get(id=stuck).status == "placed"

    broken_payment.undo()
    results = replay_dead_letters("order_summary")

    assert results["order_summary"].replayed == 2
    assert set(DeadLetter.objects.values_list("status", flat=True)) == {"replayed"}
    summary = OrderSummary.objects.get(id=stuck)
    assert summary.status == "shipped"
    assert [entry["event"] for entry in summary.history] == [
        "placed",
        "paid",
        "shipped",
    ]
    assert Checkpoint.objects.get(name="order_summary").last_error == ""
    assert rebuild.verify("order_summary").equal
    live = rows("order_summary")
    rebuild.rebuild("order_summary")
    assert rows("order_summary") == live
    # The stream is unblocked: new events apply directly.
    store.cancel(healthy, mug)
    settle()
    assert OrderSummary.objects.get(id=healthy).status == "cancelled"


def test_a_replay_that_fails_again_keeps_the_order(store, broken_payment):
    mug = store.product("MUG-1")
    stuck = store.order(mug)
    store.pay(stuck)
    store.ship(stuck)
    settle()

    results = replay_dead_letters("order_summary")

    assert results["order_summary"].still_parked == 1
    assert results["order_summary"].replayed == 0
    statuses = dict(DeadLetter.objects.values_list("event_type", "status"))
    assert statuses == {
        "order.payment_captured.v1": "parked",
        "order.shipped.v1": "waiting",
    }


def test_discarding_a_parked_event_lets_a_replay_apply_the_waiting_ones(
    store, broken_payment, capsys
):
    mug = store.product("MUG-1")
    stuck = store.order(mug)
    store.pay(stuck)
    store.ship(stuck)
    settle()
    parked = DeadLetter.objects.get(status="parked")

    call_command("replay_dead_letters", "--discard", str(parked.pk))
    call_command("replay_dead_letters", "--projection", "order_summary")

    assert "replayed 1" in capsys.readouterr().out
    summary = OrderSummary.objects.get(id=stuck)
    assert summary.status == "shipped"
    assert [entry["event"] for entry in summary.history] == ["placed", "shipped"]
    # A rebuild honours the discard, so it still equals the live rows.
    assert rebuild.verify("order_summary").equal
    assert discard_dead_letters([parked.pk]) == 0


@pytest.fixture
def counted_payment_fault(monkeypatch):
    """Fail every captured payment in the order summary, counting the calls."""
    calls = []

    def fail(self, event, recorded):
        calls.append(recorded.position)
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(OrderSummaryProjector, "on_payment_captured", fail)
    return calls


def test_a_fault_on_every_event_parks_them_within_the_round_s_retry_budget(
    store, counted_payment_fault, settings
):
    # Four retries each would cost every event a pause of 0.2 s in the round's
    # transaction; the round's budget allows two pauses in all.
    settings.PROJECTION_RETRY_DELAYS = (0.05, 0.05, 0.05, 0.05)
    settings.PROJECTION_RETRY_BUDGET_SECONDS = 0.1
    mug = store.product("MUG-1", stock=50)
    orders = [store.order(mug, customer=100 + n) for n in range(20)]
    for order in orders:
        store.pay(order)
    # One round for them all: wait until the readers' (cluster-wide) horizon
    # has passed every event, as a budget is the round's.
    wait_until(
        lambda: (
            len(eventstore.read_after(eventstore.Position(0, 0), limit=500))
            == len(store.positions)
        )
    )

    result = settle()

    assert not result.errors
    letters = DeadLetter.objects.filter(projection="order_summary")
    assert letters.count() == 20
    assert set(letters.values_list("status", flat=True)) == {"parked"}
    # One try each, two retries from the budget, and the set-based try of the batch.
    assert sum(letters.values_list("attempts", flat=True)) == 20 + 2
    assert len(counted_payment_fault) <= 20 + 2 + 1


def test_letters_of_a_round_that_rolls_back_are_kept_and_not_retried(
    store, counted_payment_fault, monkeypatch
):
    mug = store.product("MUG-1", stock=20)
    stuck = store.order(mug)
    store.pay(stuck)
    store.ship(stuck)
    healthy = store.order(mug, customer=8)

    def lost(moved):
        raise RuntimeError("connection lost (simulated)")

    with monkeypatch.context() as fault:
        fault.setattr(runner, "save_checkpoints", lost)
        # Until every event is visible, each round failing after parking.
        runner.drain(max_seconds=30)

    # The rounds rolled back (no checkpoint moved), their letters stayed.
    assert not Checkpoint.objects.exclude(position=0).exists()
    statuses = dict(
        DeadLetter.objects.filter(projection="order_summary").values_list(
            "event_type", "status"
        )
    )
    assert statuses == {
        "order.payment_captured.v1": "parked",
        "order.shipped.v1": "waiting",
    }
    tried = len(counted_payment_fault)
    # Beyond the checkpoint, a replay leaves them for the runner to pass first.
    assert replay_dead_letters("order_summary")["order_summary"].replayed == 0

    settle()

    # The next round left the parked event to its letter instead of retrying it.
    assert len(counted_payment_fault) == tried
    assert OrderSummary.objects.get(id=stuck).status == "placed"
    assert OrderSummary.objects.get(id=healthy).status == "placed"
    assert DeadLetter.objects.filter(projection="order_summary").count() == 2
    monkeypatch.undo()
    assert replay_dead_letters("order_summary")["order_summary"].replayed == 2
    assert OrderSummary.objects.get(id=stuck).status == "shipped"
    assert rebuild.verify("order_summary").equal


def test_a_replay_does_not_run_while_another_runner_holds_the_lock(
    store, broken_payment, monkeypatch
):
    mug = store.product("MUG-1")
    stuck = store.order(mug)
    store.pay(stuck)
    settle()
    broken_payment.undo()
    monkeypatch.setattr(dead_letters, "REPLAY_LOCK_WAIT_SECONDS", 0.2)
    db = settings.DATABASES["read"]
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"]
    ) as runner_elsewhere:
        runner_elsewhere.execute(
            "SELECT pg_advisory_xact_lock(%s)", [lock_key("order_summary")]
        )

        result = replay_dead_letters("order_summary")["order_summary"]
        with pytest.raises(CommandError, match="lock held"):
            call_command("replay_dead_letters", "--projection", "order_summary")

    assert result.locked_out
    assert result.replayed == 0
    assert DeadLetter.objects.get().status == "parked"
    assert OrderSummary.objects.get(id=stuck).status == "placed"
    assert replay_dead_letters("order_summary")["order_summary"].replayed == 1
