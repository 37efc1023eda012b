"""The commands and events admin, driven as a staff member would (test client).

A command runs through the real worker; the admin pages are then read and
their actions posted like the browser does.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client

from commands_app.models import CommandRecord, StoredEvent
from tests.support.commands import (
    final_status,
    place_order,
    register_product,
    run,
    submit,
)
from tests.support.processes import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def listed_positions(page) -> set[int]:
    html = page.content.decode()
    return {
        int(found)
        for found in re.findall(r"/admin/commands_app/storedevent/(\d+)/change/", html)
    }


def events_of(command_id: str) -> list[StoredEvent]:
    return list(
        StoredEvent.objects.filter(metadata__command_id=command_id).order_by("position")
    )


def projected(client, command_id: str) -> dict:
    return wait_until(
        lambda: (
            (body := client.get(f"/api/commands/{command_id}/").json())["projected"]
            and body
        ),
        timeout=30,
    )


def test_a_commands_page_explains_its_events_projections_pushes_trace_and_effects(
    worker, staff_api, admin_client: Client
):
    status = run(
        staff_api,
        "register-product",
        {"sku": "EXPLAIN-1", "name": "Mug", "price_cents": 900, "initial_stock": 4},
    )
    projected(staff_api, status["id"])
    CommandRecord.objects.filter(pk=status["id"]).update(traceparent=TRACEPARENT)
    record = CommandRecord.objects.get(pk=status["id"])
    (event,) = events_of(status["id"])

    page = admin_client.get(f"/admin/commands_app/commandrecord/{status['id']}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert listed_positions(page) == {event.position}
    assert "product.registered.v1" in html
    assert event.stream_id in html
    for name in (
        "product_catalogue",
        "order_summary",
        "customer_order_history",
        "daily_sales",
    ):
        assert re.search(rf"<td>{name}</td><td>yes</td>", html), name
    assert f"status_seq <strong>{record.status_seq}</strong>" in html
    assert "4bf92f3577b34da6a3ce929d0e0e4736" in html
    assert "None recorded." in html
    assert f"?command={status['id']}" in html


def test_a_commands_page_says_which_projections_have_not_applied_it_yet(
    worker, staff_api, admin_client: Client
):
    from django.db import connections

    from projections.locks import lock_key

    status = run(
        staff_api,
        "register-product",
        {"sku": "BEHIND-1", "name": "Cup", "price_cents": 900, "initial_stock": 4},
    )
    projected(staff_api, status["id"])
    key = lock_key("daily_sales")
    with connections["read"].cursor() as cursor:
        # Hold the projection's lock (session-level): no runner moves its
        # checkpoint while it is set back.
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])
        try:
            cursor.execute(
                "SELECT tx_id, position FROM read_checkpoints "
                "WHERE name = 'daily_sales'"
            )
            saved = cursor.fetchone()
            cursor.execute(
                "UPDATE read_checkpoints SET tx_id = 0, position = 0 "
                "WHERE name = 'daily_sales'"
            )
            html = admin_client.get(
                f"/admin/commands_app/commandrecord/{status['id']}/change/"
            ).content.decode()
            cursor.execute(
                "UPDATE read_checkpoints SET tx_id = %s, position = %s "
                "WHERE name = 'daily_sales'",
                list(saved),
            )
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
    assert "<td>daily_sales</td><td>not yet</td>" in html
    assert "<td>product_catalogue</td><td>yes</td>" in html


def test_an_events_page_links_to_the_command_that_caused_it(
    worker, staff_api, admin_client: Client
):
    status = run(
        staff_api,
        "register-product",
        {"sku": "CAUSE-1", "name": "Jug", "price_cents": 900, "initial_stock": 4},
    )
    (event,) = events_of(status["id"])

    page = admin_client.get(f"/admin/commands_app/storedevent/{event.position}/change/")

    assert page.status_code == 200
    assert (
        f'<a href="/admin/commands_app/commandrecord/{status["id"]}/change/">'
        in page.content.decode()
    )


def test_events_are_found_by_type_stream_customer_correlation_command_and_time(
    worker, staff_api, alice, alice_api, admin_client: Client
):
    product_id = register_product(staff_api, sku="FIND-1")
    order = place_order(alice_api, product_id)
    assert order["status"] == "succeeded", order
    order_events = events_of(order["id"])
    product_events = StoredEvent.objects.filter(stream_id=f"product-{product_id}")
    product_positions = set(product_events.values_list("position", flat=True))
    correlation = CommandRecord.objects.get(pk=order["id"]).correlation_id
    order_positions = {event.position for event in order_events}
    first = min(order_positions)
    registered_at = product_events.order_by("position")[0].recorded_at

    def found(query: str) -> set[int]:
        page = admin_client.get(f"/admin/commands_app/storedevent/?{query}")
        assert page.status_code == 200, query
        return listed_positions(page)

    assert found("type=order.placed.v2") & order_positions
    assert not found("type=order.placed.v2") & product_positions
    assert found(f"stream=product-{product_id}") == product_positions
    assert order_positions <= found(f"customer={alice.pk}")
    assert not found(f"customer={alice.pk}") & {
        e.position for e in product_events if e.metadata.get("user_id") != alice.pk
    }
    assert found(f"correlation={correlation}") == order_positions
    assert found(f"command={order['id']}") == order_positions
    assert found(f"correlation={uuid.uuid4()}") == set()
    assert found("correlation=not-a-uuid") == set()
    late = found(f"recorded_from={registered_at.isoformat().replace('+', '%2B')}")
    assert order_positions <= late
    early = found(f"recorded_before={registered_at.isoformat().replace('+', '%2B')}")
    assert not early & order_positions
    # Filters combine: order events of alice's stream type only.
    assert found(f"type=stock.reserved.v1&command={order['id']}") == {
        e.position for e in order_events if e.type == "stock.reserved.v1"
    }
    assert first in found(f"stream={order_events[0].stream_id}")


def test_a_failed_command_is_redriven_from_the_admin_and_succeeds(
    worker, staff_api, staff, admin_client: Client
):
    model = final_status(
        staff_api,
        submit(
            staff_api,
            "register-product",
            {"sku": "MODEL-1", "name": "Pot", "price_cents": 500, "initial_stock": 1},
        ).json()["id"],
    )
    payload = CommandRecord.objects.get(pk=model["id"]).payload
    product_id = str(uuid.uuid4())
    failed = CommandRecord.objects.create(
        type="register-product",
        user=staff,
        payload={**payload, "sku": "REDRIVE-1", "product_id": product_id},
        request_hash="-",
        status="failed",
        attempt=3,
        error={"code": "worker_lost", "message": "lost", "details": {}},
    )

    response = admin_client.post(
        "/admin/commands_app/commandrecord/",
        {"action": "redrive", "_selected_action": [str(failed.pk)]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Re-drove 1 failed command(s)." in response.content.decode()
    done = final_status(staff_api, str(failed.pk))
    assert done["status"] == "succeeded", done
    assert done["error"] is None
    assert [e.type for e in events_of(str(failed.pk))] == ["product.registered.v1"]


def test_an_imports_page_lists_its_first_events_and_counts_them_all(
    worker, staff_api, admin_client: Client
):
    from commands_app.admin import EVENTS_SHOWN

    count = EVENTS_SHOWN + 10
    products = [
        {
            "sku": f"BIG-{i:03d}",
            "name": f"Big {i}",
            "price_cents": 100,
            "initial_stock": 1,
        }
        for i in range(count)
    ]
    status = run(staff_api, "import-products", {"products": products})
    assert status["status"] == "succeeded", status

    page = admin_client.get(f"/admin/commands_app/commandrecord/{status['id']}/change/")

    assert page.status_code == 200
    assert len(listed_positions(page)) == EVENTS_SHOWN
    assert f"All {count} in the event list" in page.content.decode()
    listing = admin_client.get(
        f"/admin/commands_app/storedevent/?command={status['id']}"
    )
    assert len(listed_positions(listing)) == count


def test_a_commands_page_lists_the_effects_its_events_decided(
    worker, staff_api, alice_api, admin_client: Client
):
    from commands_app.models import Effect

    product_id = register_product(staff_api, sku="EFFECT-1")
    order = place_order(alice_api, product_id)
    assert order["status"] == "succeeded", order
    (placed,) = [e for e in events_of(order["id"]) if e.type == "order.placed.v2"]
    wait_until(
        lambda: Effect.objects.filter(
            event_position=placed.position, kind="email", status="done"
        ).exists(),
        timeout=30,
    )

    page = admin_client.get(f"/admin/commands_app/commandrecord/{order['id']}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "None recorded." not in html
    assert f"email:event:{placed.position}" in html
    assert re.search(r"<td>email</td><td>done</td>", html)


def test_a_commands_page_still_renders_while_the_read_database_does_not_answer(
    worker, staff_api, admin_client: Client, monkeypatch
):
    from django.db import OperationalError

    from commands_app import explain

    status = run(
        staff_api,
        "register-product",
        {"sku": "READ-DOWN-1", "name": "Jug", "price_cents": 900, "initial_stock": 1},
    )

    def down(record):
        raise OperationalError("couldn't get a connection after 5.00 sec")

    monkeypatch.setattr(explain, "projection_progress", down)
    page = admin_client.get(f"/admin/commands_app/commandrecord/{status['id']}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "The read database did not answer" in html
    assert "product.registered.v1" in html
