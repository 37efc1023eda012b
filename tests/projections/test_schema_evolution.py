"""Schema evolution end to end: orders stored as `order.placed.v1` read as v2.

The events are written as the code before `order.placed.v2` wrote them (the
`OrderPlacedV1` class, whose payload tests/commands_app/test_events.py checks
against a recording of that code), through the real event store. Then the new
code's aggregates, every projection, a rebuild, a dead-letter replay, the
e-mails and the integration events see v2: an order in euros. This is the
recipe of docs/operations.md ("Upgrading event schemas"), done once for real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import jsonschema
import pytest
import redis
from django.contrib.auth.models import User
from django.core import mail
from django.db import connections, transaction

from commands_app import eventstore, handlers, outbox, pii
from commands_app.domain.events import (
    OrderLine,
    OrderPlaced,
    OrderPlacedV1,
    StockReserved,
)
from commands_app.domain.order import Order, order_stream
from commands_app.eventstore import NewEvents
from commands_app.integration import publish_event, publishers
from commands_app.integration.contract import SCHEMA_DIR
from commands_app.models import Effect, StoredEvent
from commands_app.notifications import send_for_event
from commands_app.registry import UPDATE_ORDER
from projections import rebuild
from projections.dead_letters import replay_dead_letters
from projections.locks import projection_lock
from projections.models import (
    CustomerOrderHistory,
    DailySales,
    DeadLetter,
    OrderSummary,
    ProductCatalogue,
)
from projections.projectors import OrderSummaryProjector
from projections.registry import PROJECTOR_NAMES, projector_class

from .conftest import ADDRESS, Store, rows, settle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.usefixtures("fast_retries", "quiet_read_side"),
]


def place_v1(
    store: Store, customer: int, product_id: UUID, quantity: int, price: int
) -> UUID:
    """Append a placed order as place-order did before v2: one append, v1 event."""
    order_id = uuid4()
    line = OrderLine(
        product_id=product_id,
        sku="EVO-MUG",
        name="Product EVO-MUG",
        quantity=quantity,
        unit_price_cents=price,
    )
    product_stream = f"product-{product_id}"
    with transaction.atomic():
        eventstore.append(
            [
                NewEvents(
                    order_stream(order_id),
                    0,
                    (
                        OrderPlacedV1(
                            order_id=order_id,
                            customer_id=customer,
                            lines=(line,),
                            shipping_address=ADDRESS,
                            total_cents=quantity * price,
                        ),
                    ),
                ),
                NewEvents(
                    product_stream,
                    store.versions[product_stream],
                    (
                        StockReserved(
                            product_id=product_id, order_id=order_id, quantity=quantity
                        ),
                    ),
                ),
            ],
            metadata={"command_id": str(uuid4()), "user_id": customer},
        )
    store.versions[product_stream] += 1
    store.versions[order_stream(order_id)] = 1
    return order_id


def update_lines(
    customer: int, order_id: UUID, product_id: UUID, quantity: int
) -> None:
    """Run today's update-order handler on an order stored as v1, and append."""
    outcome = UPDATE_ORDER.run(
        {
            "order_id": str(order_id),
            "lines": [{"product_id": str(product_id), "quantity": quantity}],
        },
        handlers.Context(command_id=uuid4(), user_id=customer, is_staff=False),
    )
    with transaction.atomic():
        eventstore.append(
            [
                NewEvents(a.stream, a.version, tuple(a.pending_events))
                for a in outcome.changed
            ],
            metadata={"command_id": str(uuid4()), "user_id": customer},
        )


@pytest.fixture
def quiet_read_side() -> None:
    """Start from empty read tables, whatever a worker of an earlier test did.

    A session's worker process (started by an earlier pipeline or browser
    test) may still be in a round that read the earlier test's events before
    the flush and writes after it; taking every projection's lock waits for
    that round, then its rows go.
    """
    with transaction.atomic(using="read"):
        for name in PROJECTOR_NAMES:
            assert projection_lock(name, timeout_seconds=30), name
        with connections["read"].cursor() as cursor:
            for name in PROJECTOR_NAMES:
                for table in projector_class(name).tables:
                    cursor.execute(f'DELETE FROM "{table}"')
            cursor.execute("DELETE FROM read_checkpoints")


@pytest.fixture
def stream(settings: Any) -> Iterator[str]:
    """This test's own Redis stream of integration events, deleted afterwards."""
    name = f"cqrs-orders.integration.test-{uuid4().hex[:12]}"
    settings.INTEGRATION_EVENTS_BROKER = "redis"
    settings.INTEGRATION_EVENTS_URL = settings.REDIS_URL
    settings.INTEGRATION_EVENTS_STREAM = name
    yield name
    publishers.close_all()
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(name)
    client.close()


def test_orders_stored_as_v1_are_read_as_v2_by_every_reader(
    store: Store, monkeypatch: pytest.MonkeyPatch, stream: str, settings: Any
) -> None:
    alice = User.objects.create_user("alice", email="alice@example.com").pk
    mug = store.product("EVO-MUG", stock=10, price=1200)
    # The order summary fails on every placed order, as a bug of the day would:
    # the v1 events park, and what follows them waits.
    with monkeypatch.context() as fault:
        fault.setattr(
            OrderSummaryProjector,
            "on_order_placed",
            lambda self, event, recorded: 1 / 0,
        )
        kept = place_v1(store, alice, mug, 2, price=1200)
        changed = place_v1(store, alice, mug, 1, price=1200)
        settle()
        letters = DeadLetter.objects.filter(projection="order_summary")
        assert set(letters.values_list("stream_id", flat=True)) == {
            order_stream(kept),
            order_stream(changed),
        }
        # Letters parked by the code before v2 hold the v1 type and payload.
        for letter in letters:
            stored = StoredEvent.objects.get(position=letter.position)
            # (in clear: personal fields were sealed only from then on)
            letter.event_type, letter.data = stored.type, pii.reveal_one(stored.data)
            letter.save(update_fields=["event_type", "data"])

    # The rows in the store stay as they were written.
    stored = StoredEvent.objects.get(stream_id=order_stream(kept), version=1)
    assert stored.type == "order.placed.v1"
    assert "currency" not in stored.data

    # Aggregates: the v1 order loads as v2, and today's commands work on it.
    loaded = Order.from_events(
        kept, eventstore.load_streams([order_stream(kept)])[order_stream(kept)]
    )
    assert (loaded.currency, loaded.total_cents) == ("EUR", 2400)
    assert loaded.shipping_address == ADDRESS
    assert isinstance(eventstore.first_event(order_stream(kept)), OrderPlaced)
    update_lines(alice, changed, mug, 3)

    # A dead-letter replay applies the parked v1 events as v2.
    results = replay_dead_letters("order_summary")
    assert results["order_summary"].replayed == 2
    settle()
    summary = OrderSummary.objects.get(id=kept)
    assert (summary.currency, summary.total_cents) == ("EUR", 2400)
    assert summary.history[0]["details"] == {"total_cents": 2400}
    assert summary.shipping_address["city"] == ADDRESS.city
    moved = OrderSummary.objects.get(id=changed)
    assert moved.total_cents == 3600
    assert [entry["event"] for entry in moved.history] == ["placed", "lines_changed"]

    # Every other projection took the v1 orders as v2 on the live path.
    assert CustomerOrderHistory.objects.get(order_id=changed).total_cents == 3600
    (day,) = DailySales.objects.all()
    assert (day.orders, day.revenue_cents, day.units) == (2, 6000, 5)
    assert ProductCatalogue.objects.get(id=mug).available == 5

    # A rebuild of every projection gives the rows the live path gave.
    for name in PROJECTOR_NAMES:
        live = rows(name)
        assert rebuild.verify(name).equal, name
        rebuild.rebuild(name)
        assert rows(name) == live, name

    # The effects the v1 events decided: an e-mail and an integration event,
    # built from the upcast event (scheduled by today's kinds, listed as v2).
    kinds = set(
        Effect.objects.filter(event_position=stored.position).values_list(
            "kind", flat=True
        )
    )
    assert kinds == {"email", "integration"} & set(outbox.KINDS)
    recorded = eventstore.read_position(stored.position)
    assert recorded.type == "order.placed.v2"
    send_for_event(recorded)
    (email,) = mail.outbox
    assert "EUR 24.00" in email.body
    publish_event(recorded)
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    entries: list[tuple[str, dict[str, str]]] = client.xrange(stream)  # type: ignore[assignment]
    ((_entry, fields),) = entries
    client.close()
    message = json.loads(fields["payload"])
    assert (message["type"], message["version"]) == ("orders.order_placed", 1)
    assert message["data"]["currency"] == "EUR"
    assert message["data"]["total_cents"] == 2400
    schema = json.loads((SCHEMA_DIR / "orders.order_placed.v1.json").read_text())
    jsonschema.validate(message, schema)
