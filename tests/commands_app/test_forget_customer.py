"""forget-customer erases a customer's personal data everywhere, for real.

Through the API, a real Celery worker process, both PostgreSQL databases and
Redis: the personal data is looked for afterwards in a `pg_dump` of each
database, in every Redis key, in the worker's log and in dead letters.
"""

from __future__ import annotations

import subprocess
from typing import Any
from uuid import UUID

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connections

from commands_app import eventstore
from commands_app.domain.events import OrderCancelled
from commands_app.domain.order import Order, order_stream
from commands_app.models import CommandRecord, CustomerKey
from projections import rebuild
from projections.models import DeadLetter, OrderSummary
from tests.support.commands import final_status, register_product, run, submit
from tests.support.processes import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

# Values that occur nowhere else, so that a grep finds only this customer's.
NAME = "Zelda Quixforgetta"
LINE1 = "17 Rue Improbablement-Unique"
CITY = "Villeforgetta"
REASON = "Moving to Quixforgetta Island"
EMAIL = "zelda.quixforgetta@example.com"
SECRETS = (NAME, LINE1, CITY, REASON, EMAIL, "zelda-q")
ADDRESS = {
    "name": NAME,
    "line1": LINE1,
    "city": CITY,
    "postal_code": "99999",
    "country": "FR",
}


def projected(client: Any, command_id: str) -> dict[str, Any]:
    """Wait until the order summary has applied the command's events.

    Checked on the read table itself (its checkpoint covers the command's
    position), not by `projected`, which waits for every projection.
    """
    body = client.get(f"/api/commands/{command_id}/").json()
    position = body["position"]

    def applied() -> bool:
        with connections["read"].cursor() as cursor:
            cursor.execute(
                "SELECT position FROM read_checkpoints WHERE name = 'order_summary'"
            )
            row = cursor.fetchone()
        return row is not None and row[0] >= position

    if position is not None:
        wait_until(applied, timeout=60)
    return dict(body)


def place(client: Any, product_id: str) -> dict[str, Any]:
    status = run(
        client,
        "place-order",
        {
            "lines": [{"product_id": product_id, "quantity": 1}],
            "shipping_address": ADDRESS,
        },
    )
    assert status["status"] == "succeeded", status
    return projected(client, status["id"])


def dump(database: str) -> str:
    return subprocess.run(
        ["pg_dump", "--no-owner", "--data-only", _url(database)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


def _url(alias: str) -> str:
    db = settings.DATABASES[alias]
    return (
        f"postgresql://{db['USER']}@{db['HOST']}:{db.get('PORT') or 5432}/{db['NAME']}"
    )


def table_rows(text: str, table: str) -> str:
    """Return the rows of one table in a plain `pg_dump`."""
    start = text.index(f"COPY public.{table} (")
    return text[start : text.index("\\.\n", start)]


def redis_contents() -> bytes:
    client = redis.Redis.from_url(settings.REDIS_URL)
    parts = []
    for key in client.scan_iter(count=1000):
        parts.append(key)
        parts.append(client.dump(key) or b"")
    return b"\n".join(parts)


@pytest.fixture
def zelda(db: Any) -> User:
    from tests.conftest import make_user

    user = make_user("zelda-q")
    user.email = EMAIL
    user.first_name = "Zelda"
    user.save()
    return user


def test_a_forgotten_customer_personal_data_appears_nowhere_yet_events_stay(
    worker, staff_api, zelda, output_dir, caplog
):
    from tests.conftest import client_for

    caplog.set_level("DEBUG")

    zelda_api = client_for(zelda)
    product_id = register_product(staff_api, sku="FORGET-1", stock=5)
    kept = place(zelda_api, product_id)
    cancelled = place(zelda_api, product_id)
    cancel = run(
        zelda_api,
        "cancel-order",
        {"order_id": cancelled["aggregate_id"], "reason": REASON},
    )
    assert cancel["status"] == "succeeded", cancel
    projected(zelda_api, cancel["id"])

    # Before: the customer can see all of it as JSON; the events hold it
    # only encrypted, and the read model in clear.
    mine = zelda_api.get("/api/me/data/")
    assert mine.status_code == 200
    body = mine.json()
    assert body["profile"]["email"] == EMAIL
    assert {o["shipping_address"]["name"] for o in body["orders"]} == {NAME}
    assert any(
        entry["details"].get("reason") == REASON
        for o in body["orders"]
        for entry in o["history"]
    )
    assert mine["Cache-Control"] == "private, no-store"
    before = dump("default")
    assert NAME in table_rows(before, "commands")  # the grep does find it
    assert NAME not in table_rows(before, "events")
    assert NAME in table_rows(dump("read"), "read_orders")
    # A parked event keeps the event as read: in clear until the erasure.
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT position FROM events WHERE stream_id = %s AND version = 1",
            [f"order-{kept['aggregate_id']}"],
        )
        (placed_position,) = cursor.fetchone()
    placed = eventstore.read_position(placed_position)
    assert placed.data["shipping_address"]["name"] == NAME
    DeadLetter.objects.create(
        projection="customer_order_history",
        position=placed.position,
        tx_id=placed.tx_id,
        stream_id=placed.stream_id,
        version=placed.version,
        event_type=placed.type,
        data=placed.data,
        metadata=placed.metadata,
        recorded_at=placed.recorded_at,
        status="discarded",
    )

    forget = run(staff_api, "forget-customer", {"customer_id": zelda.pk})
    assert forget["status"] == "succeeded", forget
    assert forget["result"] == {"customer_id": zelda.pk}
    projected(staff_api, forget["id"])
    wait_until(
        lambda: (
            OrderSummary.objects.filter(
                customer_id=zelda.pk, shipping_address__name="[erased]"
            ).count()
            == 2
        ),
        timeout=60,
    )

    # Events stay, and the orders still load, with erased personal fields.
    order_id = UUID(kept["aggregate_id"])
    events = eventstore.load_streams([order_stream(order_id)])[order_stream(order_id)]
    order = Order.from_events(order_id, events)
    assert order.customer_id == zelda.pk
    assert events[0].shipping_address.name == "[erased]"  # type: ignore[attr-defined]
    cancelled_stream = order_stream(UUID(cancelled["aggregate_id"]))
    (cancelled_event,) = [
        event
        for event in eventstore.load_streams([cancelled_stream])[cancelled_stream]
        if isinstance(event, OrderCancelled)
    ]
    assert cancelled_event.reason == "[erased]"

    # Read models and the export show the fields as erased.
    row = OrderSummary.objects.get(pk=order_id)
    assert row.shipping_address == {
        "name": "[erased]",
        "line1": "[erased]",
        "city": "[erased]",
        "postal_code": "[erased]",
        "country": "[erased]",
    }
    reasons = [
        entry["details"]["reason"]
        for entry in OrderSummary.objects.get(pk=cancelled["aggregate_id"]).history
        if "reason" in entry["details"]
    ]
    assert reasons == ["[erased]"]
    letter = DeadLetter.objects.get(position=placed.position)
    assert letter.data["shipping_address"]["name"] == "[erased]"

    # The user record is anonymised and can no longer sign in.
    zelda.refresh_from_db()
    assert (zelda.username, zelda.email, zelda.first_name) == (
        f"forgotten-{zelda.pk}",
        "",
        "",
    )
    assert not zelda.is_active
    assert not zelda.has_usable_password()
    assert zelda_api.get("/api/me/data/").status_code == 401
    assert CustomerKey.objects.get(pk=zelda.pk).wrapped_key is None

    # A rebuild reads the same erased values as the live rows.
    assert rebuild.verify("order_summary").equal
    rebuild.rebuild("order_summary")
    assert OrderSummary.objects.get(pk=order_id).shipping_address == (
        row.shipping_address
    )

    # Nowhere: both databases, Redis, the worker's log, this process's commands.
    for database in ("default", "read"):
        text = dump(database)
        for secret in SECRETS:
            assert secret not in text, (database, secret)
    in_redis = redis_contents()
    for secret in SECRETS:
        assert secret.encode() not in in_redis
    log = worker.log_path.read_text(errors="replace") + caplog.text
    assert "forgot customer" in log  # the worker's log is the one read here
    for secret in SECRETS:
        assert secret not in log, secret
    for record in CommandRecord.objects.filter(user=zelda):
        assert "[erased]" in str(record.payload) or record.type != "place-order"


def test_forgetting_twice_succeeds_without_a_second_event(worker, staff_api, alice):
    first = run(staff_api, "forget-customer", {"customer_id": alice.pk})
    again = run(staff_api, "forget-customer", {"customer_id": alice.pk})
    assert (first["status"], again["status"]) == ("succeeded", "succeeded")
    assert first["position"] is not None
    assert again["position"] is None
    stream = eventstore.load_streams([f"customer-{alice.pk}"])[f"customer-{alice.pk}"]
    assert len(stream) == 1


def test_forgetting_an_unknown_customer_or_staff_is_refused(worker, staff_api, staff):
    for customer_id in (987654321, staff.pk):
        status = run(staff_api, "forget-customer", {"customer_id": customer_id})
        assert status["status"] == "rejected"
        assert status["error"]["code"] == "customer_not_found"


def test_only_staff_may_forget_a_customer(alice_api, bob):
    response = submit(alice_api, "forget-customer", {"customer_id": bob.pk})
    assert response.status_code == 403
    assert not CommandRecord.objects.filter(type="forget-customer").exists()


def test_the_forget_body_is_strict(staff_api, alice):
    for body in ({}, {"customer_id": "1"}, {"customer_id": 1, "name": "x"}):
        assert submit(staff_api, "forget-customer", body).status_code == 400


def test_a_forgotten_customer_events_stay_erased_under_a_new_key_request(
    worker, staff_api, alice, alice_api
):
    """An order event appended after the erasure stores personal fields erased."""
    product_id = register_product(staff_api, sku="FORGET-2", stock=5)
    status = run(
        alice_api,
        "place-order",
        {
            "lines": [{"product_id": product_id, "quantity": 1}],
            "shipping_address": ADDRESS,
        },
    )
    order_id = status["aggregate_id"]
    assert run(staff_api, "forget-customer", {"customer_id": alice.pk})["status"] == (
        "succeeded"
    )
    cancel = run(staff_api, "cancel-order", {"order_id": order_id, "reason": REASON})
    assert cancel["status"] == "succeeded", cancel
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT data::text FROM events WHERE stream_id = %s "
            "AND type = 'order.cancelled.v1'",
            [f"order-{order_id}"],
        )
        (raw,) = cursor.fetchone()
    assert REASON not in raw
    assert "[erased]" in raw
    assert final_status(staff_api, cancel["id"])["status"] == "succeeded"
