"""`manage.py reconcile_payments`: the simulated gateway's ledger against the events."""

from __future__ import annotations

from uuid import uuid4

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from commands_app import eventstore
from commands_app.domain.events import PaymentCaptured
from commands_app.eventstore import NewEvents
from commands_app.models import GatewayLedgerEntry

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


def charge(order_id, key: str, amount: int = 500) -> None:
    GatewayLedgerEntry.objects.create(
        idempotency_key=key,
        kind="charge",
        outcome="succeeded",
        reference=f"ch_{key}",
        order_id=order_id,
        amount_cents=amount,
    )


def captured(order_id, key: str, version: int, amount: int = 500) -> None:
    with transaction.atomic():
        eventstore.append(
            [
                NewEvents(
                    f"order-{order_id}",
                    version,
                    (
                        PaymentCaptured(
                            order_id=order_id,
                            payment_id=key,
                            amount_cents=amount,
                            card_last4="4242",
                            gateway_reference=f"ch_{key}",
                        ),
                    ),
                )
            ],
            metadata={},
        )


def test_a_ledger_that_matches_the_events_reconciles(capsys):
    order = uuid4()
    charge(order, "p1")
    captured(order, "p1", 0)
    call_command("reconcile_payments")
    assert "agree" in capsys.readouterr().out


def test_a_charge_without_its_captured_event_is_reported():
    charge(uuid4(), "p2")
    with pytest.raises(CommandError):
        call_command("reconcile_payments")


def test_two_captures_for_one_order_are_reported(capsys):
    order = uuid4()
    for version, key in enumerate(("p3", "p4")):
        charge(order, key)
        captured(order, key, version)
    with pytest.raises(CommandError):
        call_command("reconcile_payments")
    assert "charged 2 times" in capsys.readouterr().err
