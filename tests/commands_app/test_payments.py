"""The card number is tokenised at the door: never stored, never logged."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from django.db import connection

from commands_app.models import CommandRecord
from commands_app.tokens import issue_token
from tests.support.commands import (
    DECLINED_CARD,
    GOOD_CARD,
    final_status,
    place_order,
    register_product,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


def test_a_card_number_reaches_neither_the_database_nor_any_log(
    worker, web, staff_api, alice, alice_api
):
    token = issue_token(alice)
    outcomes = {}
    cards: list[dict[str, Any]] = [GOOD_CARD, DECLINED_CARD]
    for card in cards:
        order = place_order(
            alice_api, register_product(staff_api, sku=card["number"][-4:])
        )
        response = requests.post(
            f"{web.url}/api/commands/pay-order/",
            json={"order_id": order["aggregate_id"], "card": card},
            headers={"Authorization": f"Token {token}"},
            timeout=10,
        )
        assert response.status_code == 202, response.text
        outcomes[card["number"]] = final_status(alice_api, response.json()["id"])
    assert outcomes[GOOD_CARD["number"]]["status"] == "succeeded"
    assert outcomes[DECLINED_CARD["number"]]["error"]["code"] == "payment_declined"

    # Final: the card token, read by the charge, is dropped with the status.
    for record in CommandRecord.objects.filter(type="pay-order"):
        assert record.is_final
        assert set(record.payload["card"]) == {"last4", "exp_month", "exp_year"}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT payload::text || coalesce(result::text, '') || "
            "coalesce(error::text, '') || request_hash FROM commands"
        )
        commands = " ".join(row[0] for row in cursor.fetchall())
        cursor.execute("SELECT data::text || metadata::text FROM events")
        events = " ".join(row[0] for row in cursor.fetchall())
    for number in (str(GOOD_CARD["number"]), str(DECLINED_CARD["number"])):
        assert number not in commands
        assert number not in events
        assert number not in worker.log_path.read_text(errors="replace")
        assert number not in web.log_path.read_text(errors="replace")
    assert '"last4": "4242"' in commands
