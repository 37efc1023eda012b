"""Payment events in the read models: pending, declined, captured, refunded.

The events are appended straight into the store (no worker decides them); the
projections are checked live, applied twice, and rebuilt.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from commands_app.domain.events import (
    OrderCancelled,
    OrderRefunded,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRequested,
)
from projections import rebuild
from projections.models import CustomerOrderHistory, OrderSummary

from .conftest import Store, rows, rows_applied_twice, settle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

ORDER_PROJECTIONS = ("order_summary", "customer_order_history", "daily_sales")


def requested(order_id: UUID, amount: int = 1200) -> tuple[PaymentRequested, str]:
    payment = uuid4()
    event = PaymentRequested(
        order_id=order_id, payment_id=payment, amount_cents=amount, card_last4="4242"
    )
    return event, str(payment)


def seed_payments(store: Store) -> dict[str, Any]:
    mug = store.product("MUG-P", stock=20)
    pending, declined, refunded = (store.order(mug) for _ in range(3))
    store.append(f"order-{pending}", requested(pending)[0])
    event, payment = requested(declined)
    store.append(
        f"order-{declined}",
        event,
        PaymentDeclined(
            order_id=declined, payment_id=payment, decline_code="card_declined"
        ),
    )
    event, payment = requested(refunded)
    store.append(
        f"order-{refunded}",
        event,
        PaymentCaptured(
            order_id=refunded,
            payment_id=payment,
            amount_cents=1200,
            card_last4="4242",
            gateway_reference="ch_1",
        ),
        OrderCancelled(order_id=refunded, reason="", cancelled_by=7, refund_cents=1200),
    )
    store.append(
        f"order-{refunded}",
        OrderRefunded(
            order_id=refunded,
            refund_id=str(uuid4()),
            payment_id=payment,
            amount_cents=1200,
            gateway_reference="re_1",
        ),
    )
    return {"pending": pending, "declined": declined, "refunded": refunded}


def test_the_order_read_models_follow_a_payment_and_a_refund(store):
    orders = seed_payments(store)
    settle()
    summary = {o.id: o for o in OrderSummary.objects.all()}
    assert summary[orders["pending"]].status == "payment_pending"
    assert summary[orders["declined"]].status == "placed"
    refunded = summary[orders["refunded"]]
    assert (refunded.status, refunded.refunded_cents) == ("cancelled", 1200)
    assert [e["event"] for e in refunded.history] == [
        "placed",
        "payment_requested",
        "paid",
        "cancelled",
        "refunded",
    ]
    assert refunded.history[-1]["details"] == {"amount_cents": 1200}
    assert [e["event"] for e in summary[orders["declined"]].history][-1] == (
        "payment_declined"
    )
    history = {h.order_id: h.status for h in CustomerOrderHistory.objects.all()}
    assert history[orders["pending"]] == "payment_pending"
    assert history[orders["declined"]] == "placed"


@pytest.mark.parametrize("name", ORDER_PROJECTIONS)
def test_payment_events_applied_twice_or_rebuilt_give_the_same_rows(store, name):
    seed_payments(store)
    settle(name)
    live = rows(name)
    assert rows_applied_twice(name) == live
    assert rebuild.verify(name).equal
