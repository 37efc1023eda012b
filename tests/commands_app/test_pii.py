"""Personal fields: sealed per customer at the store, revealed on reads, shredded."""

from __future__ import annotations

import base64
import json
import os
from uuid import uuid4

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection, transaction

from commands_app import eventstore, pii, privacy
from commands_app.domain.events import (
    Address,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    event_to_data,
)
from commands_app.domain.order import Order, order_stream
from commands_app.eventstore import NewEvents
from commands_app.models import CustomerKey

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

ADDRESS = Address(
    name="Ines Sealed",
    line1="3 Cipher Lane",
    city="Keyville",
    postal_code="",
    country="FR",
)


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def placed(customer_id: int) -> OrderPlaced:
    return OrderPlaced(
        order_id=uuid4(),
        customer_id=customer_id,
        lines=(
            OrderLine(
                product_id=uuid4(), sku="S", name="Mug", quantity=1, unit_price_cents=5
            ),
        ),
        shipping_address=ADDRESS,
        total_cents=5,
        currency="EUR",
    )


def append(event: OrderPlaced | OrderCancelled, stream: str, version: int) -> int:
    with transaction.atomic():
        (position,) = eventstore.append(
            [NewEvents(stream, version, (event,))], metadata={}
        )
    return position


def raw_data(position: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT data::text FROM events WHERE position = %s", [position])
        return str(cursor.fetchone()[0])


def test_personal_fields_are_stored_encrypted_and_read_in_clear():
    event = placed(41)
    position = append(event, order_stream(event.order_id), 0)
    assert "Ines Sealed" not in raw_data(position)
    assert "Cipher Lane" not in raw_data(position)
    assert '"postal_code": ""' in raw_data(position)  # empty stays empty
    assert eventstore.read_position(position).data == event_to_data(event)
    loaded = eventstore.load_streams([order_stream(event.order_id)])
    assert loaded[order_stream(event.order_id)] == [event]


def test_a_cancel_reason_is_sealed_with_the_order_customer_key():
    event = placed(42)
    stream = order_stream(event.order_id)
    append(event, stream, 0)
    cancel = OrderCancelled(
        order_id=event.order_id, reason="Moving away", cancelled_by=1, refund_cents=0
    )
    position = append(cancel, stream, 1)
    assert "Moving away" not in raw_data(position)
    assert json.loads(raw_data(position))[pii.MARK]["customer"] == 42
    assert eventstore.read_position(position).data["reason"] == "Moving away"


def test_after_the_key_is_shredded_the_fields_read_as_erased_and_the_order_loads():
    event = placed(43)
    stream = order_stream(event.order_id)
    append(event, stream, 0)
    pii.shred(43)
    (read,) = eventstore.load_streams([stream])[stream]
    assert read.shipping_address == Address(  # type: ignore[attr-defined]
        name="[erased]",
        line1="[erased]",
        city="[erased]",
        postal_code="",
        country="[erased]",
    )
    assert Order.from_events(event.order_id, [read]).customer_id == 43
    # A new event about the forgotten customer stores no personal data at all.
    cancel = OrderCancelled(
        order_id=event.order_id, reason="Gone", cancelled_by=1, refund_cents=0
    )
    position = append(cancel, stream, 1)
    assert json.loads(raw_data(position))["reason"] == "[erased]"


def test_a_ciphertext_moved_to_another_customer_does_not_decrypt():
    keys = pii.ensure_keys([44, 45])
    sealed = pii.seal({"reason": "Private"}, ("reason",), 44, keys[44])
    stolen = {**sealed, pii.MARK: {**sealed[pii.MARK], "customer": 45}}
    with pytest.raises(ValueError, match="does not decrypt"):
        pii.reveal(stolen, keys)


def test_rotating_the_master_key_rewraps_every_data_key(settings):
    event = placed(46)
    position = append(event, order_stream(event.order_id), 0)
    old = settings.PII_MASTER_KEY
    settings.PII_MASTER_KEY = new_key()
    settings.PII_PREVIOUS_MASTER_KEYS = [old]
    current, _ = pii.keyring()
    assert pii.keys_not_wrapped_by(current) >= 1
    assert pii.rotate(batch=2) >= 1
    assert pii.keys_not_wrapped_by(current) == 0
    assert CustomerKey.objects.get(pk=46).master_key_id == current
    # The old master key can go: everything reads with the new one alone.
    settings.PII_PREVIOUS_MASTER_KEYS = []
    assert eventstore.read_position(position).data == event_to_data(event)


def test_a_data_key_under_an_unknown_master_key_fails_loudly(settings):
    event = placed(47)
    position = append(event, order_stream(event.order_id), 0)
    settings.PII_MASTER_KEY = new_key()
    with pytest.raises(ImproperlyConfigured, match="master key"):
        eventstore.read_position(position)


def test_a_malformed_master_key_is_refused_without_repeating_it(settings):
    settings.PII_MASTER_KEY = "not-a-key-at-all"
    with pytest.raises(ImproperlyConfigured) as raised:
        pii.keyring()
    assert "not-a-key-at-all" not in str(raised.value)


def insert_clear(stream: str, data: dict[str, object]) -> int:
    """Insert an event as stored before personal data was encrypted."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events (stream_id, version, type, data, metadata) "
            "VALUES (%s, 1, 'order.placed.v1', %s::jsonb, '{}') RETURNING position",
            [stream, json.dumps(data)],
        )
        return int(cursor.fetchone()[0])


def refused(*statements: str) -> None:
    """Assert that the trigger refuses the last of `statements` (one transaction)."""
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements[:-1]:
            cursor.execute(statement)
        with pytest.raises(DatabaseError, match="append-only"):
            cursor.execute(statements[-1])
        transaction.set_rollback(True)


def test_forgetting_rewrites_events_stored_in_clear_and_nothing_else_may():
    event = placed(48)
    stream = order_stream(event.order_id)
    position = insert_clear(stream, event_to_data(event))
    erase = f"UPDATE events SET data = '{{}}' WHERE position = {position}"
    refused(erase)
    with transaction.atomic():
        assert pii.customer_streams(48) == [stream]
        assert pii.erase_clear_events([stream]) == 1
    assert "Ines Sealed" not in raw_data(position)
    assert json.loads(raw_data(position))["shipping_address"]["city"] == "[erased]"
    # The permission ended with that transaction (SET LOCAL), and even with it
    # only `data` may change.
    refused(erase)
    refused(
        "SET LOCAL cqrs.erase_personal_data = 'on'",
        f"UPDATE events SET type = 'x' WHERE position = {position}",
    )
    refused(
        "SET LOCAL cqrs.erase_personal_data = 'on'",
        f"DELETE FROM events WHERE position = {position}",
    )


def test_command_bodies_lose_their_personal_fields():
    body = {
        "order_id": "x",
        "lines": [{"product_id": "p", "quantity": 1}],
        "shipping_address": {"name": "Ines", "country": "FR"},
        "reason": "",
    }
    assert privacy.erase_payload(body) == {
        **body,
        "shipping_address": {"name": "[erased]", "country": "[erased]"},
    }


@pytest.mark.parametrize("count", [1, 3, 8, 9, 12])
def test_keys_read_by_their_own_parameters_or_an_array_are_the_same(count):
    """Up to eight customers are one parameter each, more are one array."""
    ids = list(range(7_000_001, 7_000_001 + count))
    created = pii.ensure_keys(ids[:-1])  # the last customer has no key row
    keys, missing = pii._read_keys(ids)
    assert missing == {ids[-1]}
    assert keys[ids[-1]] is None
    nonce = os.urandom(12)
    for customer_id in ids[:-1]:
        mine, read = created[customer_id], keys[customer_id]
        assert mine is not None
        assert read is not None
        assert read.decrypt(nonce, mine.encrypt(nonce, b"ada", None), None) == b"ada"
