"""The public contract of integration events: schemas, ids, sequence, privacy.

Orders are real rows of the event store (to_public reads the order's stream
for `previous_sequence`); types that the payment process adds are built by
type name. No broker here: test_integration_brokers.py consumes from them.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import jsonschema
import pytest

from commands_app.domain.events import (
    OrderLinesChanged,
    PaymentRequested,
    ShippingAddressChanged,
    StockReserved,
)
from commands_app.eventstore import RecordedEvent
from commands_app.integration import PUBLIC_TYPES, PUBLISHED, event_id, to_public
from commands_app.integration.contract import SCHEMA_DIR, customer_ref
from tests.commands_app.recorded import (
    ADDRESS,
    cancelled,
    later,
    paid,
    placed,
    shipped,
    store,
)

pytestmark = [pytest.mark.integration]

CUSTOMER = 4242_17


def validator(public_type: str, version: int) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{public_type}.v{version}.json").read_text())
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def check(message: dict[str, Any]) -> None:
    """Assert that `message` is valid against the schema of its type."""
    errors = [
        f"{error.json_path}: {error.message}"
        for error in validator(message["type"], message["version"]).iter_errors(message)
    ]
    assert errors == [], message
    # jsonschema checks date-time only with an optional package installed.
    assert datetime.fromisoformat(message["occurred_at"]).tzinfo is not None


def a_lifecycle() -> list[RecordedEvent]:
    """Store an order placed, paid and shipped, and one placed and cancelled."""
    first, second = placed(CUSTOMER), placed(CUSTOMER)
    return [
        *store([first, paid(first), shipped(first)]),
        *store([second, cancelled(second, by=CUSTOMER)]),
    ]


def the_new_types(order_id: UUID) -> list[RecordedEvent]:
    """Events of the payment process, by type name, after a stored placed + paid."""
    return [
        later(
            order_id,
            "order.payment_captured.v1",
            3,
            {"payment_id": str(uuid4()), "amount_cents": 6950},
        ),
        later(
            order_id,
            "order.refunded.v1",
            4,
            {"refund_id": str(uuid4()), "amount_cents": 6950},
        ),
    ]


def test_every_public_type_has_a_valid_schema_whose_examples_validate() -> None:
    files = {path.name for path in SCHEMA_DIR.glob("*.json")}
    assert files == {public.schema_path.name for public in PUBLIC_TYPES}
    for public in PUBLIC_TYPES:
        schema = json.loads(public.schema_path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["properties"]["type"] == {"const": public.name}
        assert schema["properties"]["version"] == {"const": public.version}
        assert schema["examples"], public.name
        for example in schema["examples"]:
            check(example)


def test_the_contract_documentation_lists_every_public_type() -> None:
    doc = (SCHEMA_DIR.parents[2] / "docs" / "integration-events.md").read_text()
    for public in PUBLIC_TYPES:
        assert f"| `{public.name}` |" in doc
        assert public.schema_path.name in doc


def test_every_published_internal_type_maps_to_a_public_type() -> None:
    assert set(PUBLISHED.values()) == set(PUBLIC_TYPES)


@pytest.mark.django_db
def test_every_published_event_validates_against_its_schema() -> None:
    events = a_lifecycle()
    events += the_new_types(UUID(events[0].stream_id.removeprefix("order-")))
    messages = [to_public(event) for event in events]

    assert [m["type"] for m in messages if m] == [
        "orders.order_placed",
        "orders.order_paid",
        "orders.order_shipped",
        "orders.order_placed",
        "orders.order_cancelled",
        "orders.order_paid",
        "orders.order_refunded",
    ]
    for message in messages:
        assert message is not None
        check(message)


@pytest.mark.django_db
def test_changed_lines_are_published_with_the_new_total_but_no_address() -> None:
    order = placed(CUSTOMER)
    first_line = order.lines[0]
    (_placed, changed, moved) = store(
        [
            order,
            OrderLinesChanged(
                order_id=order.order_id,
                lines=(first_line,),
                total_cents=first_line.total_cents,
                changed_by=CUSTOMER,
            ),
            ShippingAddressChanged(
                order_id=order.order_id,
                shipping_address=replace(ADDRESS, city="Lyon"),
                changed_by=CUSTOMER,
            ),
        ]
    )

    message = to_public(changed)

    assert message is not None
    check(message)
    assert (message["type"], message["sequence"], message["previous_sequence"]) == (
        "orders.order_lines_changed",
        2,
        1,
    )
    assert message["data"] == {
        "lines": [
            {
                "product_id": str(first_line.product_id),
                "sku": first_line.sku,
                "quantity": first_line.quantity,
                "unit_price_cents": first_line.unit_price_cents,
            }
        ],
        "total_cents": first_line.total_cents,
    }
    assert to_public(moved) is None


@pytest.mark.django_db
def test_a_placed_order_is_published_with_its_lines_and_an_opaque_customer() -> None:
    (event,) = store([placed(CUSTOMER)])

    message = to_public(event)

    assert message is not None
    assert message["order_id"] == event.stream_id.removeprefix("order-")
    assert message["sequence"] == 1
    assert message["previous_sequence"] is None
    assert message["event_id"] == event_id(event)
    assert message["data"] == {
        "customer_id": customer_ref(CUSTOMER),
        "lines": [
            {
                "product_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
                "sku": "MUG-001",
                "quantity": 2,
                "unit_price_cents": 1200,
            },
            {
                "product_id": "1d0f3e51-63a4-4b8e-8f53-3f2f0f1a9b77",
                "sku": "PEN-001",
                "quantity": 1,
                "unit_price_cents": 4550,
            },
        ],
        "total_cents": 6950,
        "currency": "EUR",
    }


RANDOM_PARTS = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # uuid4, uuid5
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?"  # now()
)


@pytest.mark.django_db
def test_no_personal_or_internal_data_reaches_a_public_event() -> None:
    events = a_lifecycle()
    events += the_new_types(UUID(events[0].stream_id.removeprefix("order-")))
    secret = [
        ADDRESS.name,
        ADDRESS.line1,
        ADDRESS.city,
        ADDRESS.postal_code,
        "Stoneware mug",  # product names are the catalogue's, not needed here
        "Changed my mind",  # free text a customer typed
        "4242",  # card digits
        "ch_test",  # the gateway's reference
        str(CUSTOMER),  # the internal user id
    ]

    for event in events:
        text = json.dumps(to_public(event))
        # A random id or a clock's digits may hold "4242"; they are no leak.
        masked = RANDOM_PARTS.sub("-", text)
        assert [value for value in secret if value in masked] == [], event.type
        for key in ("shipping_address", "name", "card_last4", "payment_id"):
            assert f'"{key}"' not in text


def test_the_customer_id_is_stable_opaque_and_keyed(settings) -> None:
    assert customer_ref(7) == customer_ref(7)
    assert customer_ref(7) != customer_ref(8)
    # Keyed: an unkeyed hash of the id (which anyone could compute) differs.
    unkeyed = hashlib.sha256(b"customer:7").hexdigest()[:32]
    assert customer_ref(7) != f"cus_{unkeyed}"
    before = customer_ref(7)
    settings.INTEGRATION_EVENTS_CUSTOMER_KEY = "another key"
    assert customer_ref(7) != before


@pytest.mark.django_db
def test_the_same_event_always_gets_the_same_event_id() -> None:
    (event,) = store([placed(CUSTOMER)])
    redelivered = replace(event, position=event.position + 99, tx_id=5)

    assert to_public(event) == to_public(event)
    assert event_id(event) == event_id(redelivered)
    assert event_id(event) != event_id(replace(event, version=2))
    assert event_id(event) != event_id(replace(event, stream_id=f"order-{uuid4()}"))


def test_internal_only_events_are_not_published() -> None:
    order_id = uuid4()
    product = StockReserved(product_id=uuid4(), order_id=order_id, quantity=1)
    reserved = RecordedEvent(
        position=1,
        tx_id=1,
        stream_id=f"product-{product.product_id}",
        version=2,
        type=product.type_name,
        data={"product_id": str(product.product_id), "order_id": str(order_id)},
        metadata={},
        recorded_at=datetime.now().astimezone(),
    )
    assert to_public(reserved) is None
    assert to_public(later(order_id, "order.payment_requested.v1", 2, {})) is None
    assert to_public(later(order_id, "order.payment_declined.v1", 3, {})) is None


@pytest.mark.django_db
def test_previous_sequence_steps_over_internal_events_of_the_order() -> None:
    order = placed(CUSTOMER)
    store(
        [
            order,
            PaymentRequested(
                order_id=order.order_id,
                payment_id=uuid4(),
                amount_cents=6950,
                card_last4="4242",
            ),
        ]
    )
    captured, refunded = the_new_types(order.order_id)
    (ship,) = store([shipped(order)], after=2)

    assert to_public(captured)["previous_sequence"] == 1  # type: ignore[index]
    assert to_public(ship)["previous_sequence"] == 1  # type: ignore[index]
    assert to_public(ship)["sequence"] == 3  # type: ignore[index]
    assert to_public(refunded)["previous_sequence"] == 3  # type: ignore[index]
