"""The order's admin page shows its timeline from the event store."""

from __future__ import annotations

import html
from uuid import uuid4

import pytest
from django.db import transaction
from django.test import Client

from commands_app import eventstore
from commands_app.domain.events import (
    OrderLine,
    OrderPlaced,
    OrderShipped,
    PaymentCaptured,
)
from commands_app.eventstore import NewEvents
from tests.queries_app import factories as f

from .conftest import ADDRESS

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def append(stream: str, version: int, event, **metadata) -> None:
    with transaction.atomic():
        eventstore.append([NewEvents(stream, version, (event,))], metadata=metadata)


def test_the_order_page_shows_each_event_the_state_after_it_and_its_cause(
    admin_client: Client, alice, staff
) -> None:
    order_id = uuid4()
    stream = f"order-{order_id}"
    line = OrderLine(
        product_id=uuid4(), sku="MUG-1", name="Mug", quantity=2, unit_price_cents=600
    )
    placing, shipping = uuid4(), uuid4()
    append(
        stream,
        0,
        OrderPlaced(
            order_id=order_id,
            customer_id=alice.pk,
            lines=(line,),
            shipping_address=ADDRESS,
            currency="EUR",
            total_cents=1200,
        ),
        command_id=str(placing),
        user_id=alice.pk,
        traceparent=f"00-{TRACE}-00f067aa0ba902b7-01",
    )
    append(
        stream,
        1,
        PaymentCaptured(
            order_id=order_id,
            payment_id="pay-1",
            amount_cents=1200,
            card_last4="4242",
            gateway_reference="ch_1",
        ),
        user_id=alice.pk,
    )
    append(
        stream,
        2,
        OrderShipped(order_id=order_id, tracking_number="TRK-9"),
        command_id=str(shipping),
        user_id=staff.pk,
    )
    f.order(alice, id=order_id, status="shipped")

    response = admin_client.get(f"/admin/projections/ordersummary/{order_id}/change/")
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    table = page[page.index('class="order-timeline"') :]
    assert table.count("<tr>") == 4  # the header and three events
    for kind in ("order.placed.v2", "order.payment_captured.v1", "order.shipped.v1"):
        assert kind in table
    # What changed, and the state after each event.
    assert '<b>status</b>: "placed" → "paid"' in table
    assert '<b>status</b>: "paid" → "shipped"' in table
    assert "<b>total_cents</b>: - → 1200" in table
    # What caused each: the command, the user and the trace.
    assert f"/admin/commands_app/commandrecord/{placing}/change/" in table
    assert f"/admin/commands_app/commandrecord/{shipping}/change/" in table
    assert f">alice</a> (#{alice.pk})" in table
    assert f">staff</a> (#{staff.pk})" in table
    assert f"<code>{TRACE}</code>" in table


def test_orders_are_found_by_their_exact_id_and_other_text_finds_none(
    admin_client: Client, alice
) -> None:
    order = f.order(alice)
    url = "/admin/projections/ordersummary/"
    found = admin_client.get(url, {"q": str(order.id)})
    assert found.status_code == 200
    assert str(order.id) in found.content.decode()
    assert admin_client.get(url, {"q": "not-an-id"}).status_code == 200
