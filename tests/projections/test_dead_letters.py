"""A failing projection parks the event, keeps the others going, replays in order."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from projections import rebuild
from projections.dead_letters import discard_dead_letters, replay_dead_letters
from projections.models import Checkpoint, DeadLetter, OrderSummary
from projections.projectors import OrderSummaryProjector
from projections.registry import PROJECTOR_NAMES

from .conftest import rows, settle

pytestmark = [
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
