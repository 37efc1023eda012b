"""Every command through the write side: API → Celery worker → events → status.

The `worker` fixture is a real worker process; the test and the worker share the
test databases, so tests here commit (transaction=True).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from commands_app import acceptance
from commands_app.models import CommandRecord, GatewayLedgerEntry, StoredEvent
from tests.support.commands import (
    ADDRESS,
    DECLINED_CARD,
    GOOD_CARD,
    final_status,
    place_order,
    register_product,
    run,
    submit,
)
from tests.support.processes import Worker

pytestmark = [
    pytest.mark.integration,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


def events_of(status: dict) -> list[StoredEvent]:
    return list(
        StoredEvent.objects.filter(metadata__command_id=status["id"]).order_by(
            "position"
        )
    )


def types_of(status: dict) -> list[str]:
    return [event.type for event in events_of(status)]


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_command_goes_from_accepted_to_succeeded_with_its_events_and_times(
    worker, staff_api
):
    response = submit(
        staff_api,
        "register-product",
        {"sku": "MUG-1", "name": "Mug", "price_cents": 1200, "initial_stock": 3},
    )
    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    status = final_status(staff_api, response.json()["id"])
    assert status["status"] == "succeeded", status
    assert status["error"] is None
    assert status["progress"] == 100
    assert status["result"] == {"product_id": status["aggregate_id"]}
    assert when(status["created_at"]) <= when(status["started_at"])
    assert when(status["started_at"]) <= when(status["finished_at"])
    (event,) = events_of(status)
    assert event.type == "product.registered.v1"
    assert event.stream_id == f"product-{status['aggregate_id']}"
    assert event.version == 1
    assert event.position == status["position"]
    assert event.data["sku"] == "MUG-1"
    record = CommandRecord.objects.get(pk=status["id"])
    assert event.metadata["command_id"] == status["id"]
    assert event.metadata["correlation_id"] == str(record.correlation_id)
    assert event.metadata["causation_id"] == status["id"]
    assert event.metadata["user_id"] == record.user_id
    assert record.attempt == 1


def test_registering_a_taken_sku_is_rejected_without_an_event(worker, staff_api):
    register_product(staff_api, sku="MUG-1")
    status = run(
        staff_api,
        "register-product",
        {"sku": "MUG-1", "name": "Other", "price_cents": 1, "initial_stock": 1},
    )
    assert status["status"] == "rejected"
    assert status["error"]["code"] == "duplicate_sku"
    assert set(status["error"]) == {"code", "message", "details"}
    assert status["position"] is None
    assert events_of(status) == []
    assert StoredEvent.objects.count() == 1


def test_restocking_adds_stock_and_an_unknown_product_is_rejected(worker, staff_api):
    product_id = register_product(staff_api, stock=2)
    status = run(
        staff_api, "restock-product", {"product_id": product_id, "quantity": 5}
    )
    assert status["status"] == "succeeded", status
    assert status["result"] == {"available": 7}
    assert types_of(status) == ["product.restocked.v1"]
    ghost = run(
        staff_api,
        "restock-product",
        {"product_id": "00000000-0000-4000-8000-000000000000", "quantity": 5},
    )
    assert ghost["status"] == "rejected"
    assert ghost["error"]["code"] == "product_not_found"


def test_importing_products_reports_progress_to_100_and_counts(worker, staff_api):
    register_product(staff_api, sku="OLD-1")
    items = [
        {"sku": sku, "name": sku, "price_cents": 100, "initial_stock": 1}
        for sku in ["NEW-1", "OLD-1", "NEW-2", "NEW-1", "NEW-3"]
    ]
    status = run(staff_api, "import-products", {"products": items})
    assert status["status"] == "succeeded", status
    assert status["progress"] == 100
    assert status["result"] == {"imported": 3, "skipped": 2}
    registered = [e.data["sku"] for e in events_of(status)]
    assert sorted(registered) == ["NEW-1", "NEW-2", "NEW-3"]
    assert set(types_of(status)) == {"product.registered.v1"}


def test_placing_an_order_reserves_stock_and_short_stock_is_rejected(
    worker, staff_api, alice_api
):
    product_id = register_product(staff_api, stock=3, price=500)
    status = place_order(alice_api, product_id, quantity=2)
    assert status["status"] == "succeeded", status
    assert status["result"]["total_cents"] == 1000
    assert types_of(status) == ["order.placed.v2", "product.stock_reserved.v1"]
    short = place_order(alice_api, product_id, quantity=2)
    assert short["status"] == "rejected"
    assert short["error"]["code"] == "insufficient_stock"
    assert short["error"]["details"]["available"] == 1
    assert events_of(short) == []


def test_placing_an_order_for_an_unknown_product_is_rejected(worker, alice_api):
    status = place_order(alice_api, "00000000-0000-4000-8000-000000000000")
    assert status["status"] == "rejected"
    assert status["error"]["code"] == "product_not_found"


def test_paying_an_order_requests_the_payment_then_records_its_capture(
    worker, staff_api, alice_api
):
    """The gateway is the simulated one (outside the system)."""
    product_id = register_product(staff_api, price=1500)
    order = place_order(alice_api, product_id, quantity=2)
    status = run(
        alice_api, "pay-order", {"order_id": order["aggregate_id"], "card": GOOD_CARD}
    )
    assert status["status"] == "succeeded", status
    assert status["result"]["amount_cents"] == 3000
    requested, captured = events_of(status)
    assert requested.type == "order.payment_requested.v1"
    assert captured.type == "order.payment_captured.v1"
    assert requested.metadata["recorded_by"] == "commands.execute"
    assert captured.metadata["recorded_by"] == "effects.charge"
    assert captured.data["amount_cents"] == 3000
    assert captured.data["card_last4"] == "4242"
    assert status["result"]["payment_id"] == requested.data["payment_id"]
    assert status["position"] == captured.position
    ledger = GatewayLedgerEntry.objects.get(idempotency_key=captured.data["payment_id"])
    assert (ledger.kind, ledger.outcome, ledger.amount_cents) == (
        "charge",
        "succeeded",
        3000,
    )
    assert captured.data["gateway_reference"] == ledger.reference
    again = run(
        alice_api, "pay-order", {"order_id": order["aggregate_id"], "card": GOOD_CARD}
    )
    assert again["status"] == "rejected"
    assert again["error"]["code"] == "invalid_state"
    assert "token" not in CommandRecord.objects.get(pk=status["id"]).payload["card"]


def test_paying_with_a_declined_card_is_rejected_as_payment_declined(
    worker, staff_api, alice_api
):
    """The gateway is the simulated one: a declined test card declines."""
    order = place_order(alice_api, register_product(staff_api))
    status = run(
        alice_api,
        "pay-order",
        {"order_id": order["aggregate_id"], "card": DECLINED_CARD},
    )
    assert status["status"] == "rejected"
    assert status["error"]["code"] == "payment_declined"
    assert types_of(status) == [
        "order.payment_requested.v1",
        "order.payment_declined.v1",
    ]
    again = run(
        alice_api, "pay-order", {"order_id": order["aggregate_id"], "card": GOOD_CARD}
    )
    assert again["status"] == "succeeded", again


def test_cancelling_an_order_releases_its_stock_for_the_next_order(
    worker, staff_api, alice_api, bob_api
):
    product_id = register_product(staff_api, stock=2)
    order = place_order(alice_api, product_id, quantity=2)
    assert place_order(bob_api, product_id, quantity=1)["status"] == "rejected"
    status = run(
        alice_api, "cancel-order", {"order_id": order["aggregate_id"], "reason": "no"}
    )
    assert status["status"] == "succeeded", status
    assert types_of(status) == ["order.cancelled.v1", "product.stock_released.v1"]
    assert events_of(status)[1].data["quantity"] == 2
    assert place_order(bob_api, product_id, quantity=2)["status"] == "succeeded"


def test_shipping_a_paid_order_and_then_cancelling_it_is_refused(
    worker, staff_api, alice_api
):
    order = place_order(alice_api, register_product(staff_api))
    order_id = order["aggregate_id"]
    unpaid = run(staff_api, "ship-order", {"order_id": order_id})
    assert unpaid["status"] == "rejected"
    assert unpaid["error"]["code"] == "invalid_state"
    run(alice_api, "pay-order", {"order_id": order_id, "card": GOOD_CARD})
    status = run(
        staff_api, "ship-order", {"order_id": order_id, "tracking_number": "TRK-1"}
    )
    assert status["status"] == "succeeded", status
    assert types_of(status) == ["order.shipped.v1"]
    late = run(alice_api, "cancel-order", {"order_id": order_id})
    assert late["status"] == "rejected"
    assert late["error"]["code"] == "invalid_state"


def test_ten_concurrent_orders_for_five_in_stock_leave_exactly_five_placed(
    worker, output_dir, staff_api, alice_api, monkeypatch, settings
):
    product_id = register_product(staff_api, stock=5)
    body = {
        "lines": [{"product_id": product_id, "quantity": 1}],
        "shipping_address": ADDRESS,
    }
    more = Worker(queues="commands", concurrency=4, log_dir=output_dir).start()
    try:
        # Hold the tasks back until all ten are stored, then release them at once
        # to six worker processes racing on one product stream.
        held: list[CommandRecord] = []
        settings.COMMANDS_RELAY_ENABLED = False  # the request publishes them
        monkeypatch.setattr(acceptance, "enqueue", held.append)
        ids = [submit(alice_api, "place-order", body).json()["id"] for _ in range(10)]
        monkeypatch.undo()
        for record in held:
            acceptance.enqueue(record)
        outcomes = [final_status(alice_api, command_id) for command_id in ids]
    finally:
        more.stop()
    assert sorted(o["status"] for o in outcomes) == ["rejected"] * 5 + ["succeeded"] * 5
    assert {o["error"]["code"] for o in outcomes if o["error"]} == {
        "insufficient_stock"
    }
    stream = StoredEvent.objects.filter(stream_id=f"product-{product_id}")
    reserved = stream.filter(type="product.stock_reserved.v1")
    assert reserved.count() == 5
    assert sum(e.data["quantity"] for e in reserved) == 5
    assert StoredEvent.objects.filter(type="order.placed.v2").count() == 5
    versions = list(stream.order_by("version").values_list("version", flat=True))
    assert versions == list(range(1, 7))


def test_prefer_wait_answers_with_the_final_status_when_it_finishes_in_time(
    worker, staff_api
):
    response = submit(
        staff_api,
        "register-product",
        {"sku": "WAIT-1", "name": "Mug", "price_cents": 1, "initial_stock": 1},
        Prefer="wait=10",
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "succeeded"
    assert response.headers["Preference-Applied"] == "wait=10"
    assert response.headers["Location"] == f"/api/commands/{response.json()['id']}/"


def test_prefer_wait_on_a_payment_answers_once_the_charge_is_recorded(
    worker, staff_api, alice_api
):
    """The simulated gateway charges after the request is appended."""
    order = place_order(alice_api, register_product(staff_api, price=800))
    response = submit(
        alice_api,
        "pay-order",
        {"order_id": order["aggregate_id"], "card": GOOD_CARD},
        Prefer="wait=10",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "succeeded", body
    assert body["result"]["amount_cents"] == 800
    assert [e.type for e in events_of(body)][-1] == "order.payment_captured.v1"
