"""Event serialization: every event type survives a trip through JSON (no database)."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands_app.domain import events
from commands_app.domain.events import (
    EVENT_TYPES,
    UPCASTERS,
    Address,
    CustomerForgotten,
    OrderCancelled,
    OrderLine,
    OrderLinesChanged,
    OrderPlaced,
    OrderPlacedV1,
    OrderRefunded,
    OrderShipped,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRequested,
    ProductRestocked,
    ShippingAddressChanged,
    StockReleased,
    UnknownEventTypeError,
    _dump,
    event_from_data,
    event_to_data,
    upcast,
)

from .given import ADDRESS, paid, placed, registered, reserved

# An `order.placed.v1` event as the code before v2 wrote it (commit c0121e1).
V1_RECORDED = json.loads(
    (Path(__file__).parents[1] / "data" / "order.placed.v1.json").read_text()
)

pytestmark = [pytest.mark.unit]

mug, tea = registered(), registered(price=350)
an_order = placed(uuid4(), [(mug, 2), (tea, 1)])
EXAMPLES = [
    mug,
    ProductRestocked(product_id=mug.product_id, quantity=4),
    reserved(mug, an_order.order_id, 2),
    StockReleased(product_id=mug.product_id, order_id=an_order.order_id, quantity=2),
    OrderPlacedV1(
        order_id=an_order.order_id,
        customer_id=an_order.customer_id,
        lines=an_order.lines,
        shipping_address=an_order.shipping_address,
        total_cents=an_order.total_cents,
    ),
    an_order,
    OrderLinesChanged(
        order_id=an_order.order_id,
        lines=an_order.lines[:1],
        total_cents=an_order.lines[0].total_cents,
        changed_by=7,
    ),
    ShippingAddressChanged(
        order_id=an_order.order_id,
        shipping_address=Address(
            name="Alice Martin",
            line1="2 place Bellecour",
            city="Lyon",
            postal_code="69002",
            country="FR",
        ),
        changed_by=7,
    ),
    paid(an_order),
    PaymentRequested(
        order_id=an_order.order_id,
        payment_id=uuid4(),
        amount_cents=1350,
        card_last4="4242",
    ),
    PaymentCaptured(
        order_id=an_order.order_id,
        payment_id=str(uuid4()),
        amount_cents=1350,
        card_last4="4242",
        gateway_reference="ch_1",
    ),
    PaymentDeclined(
        order_id=an_order.order_id,
        payment_id=str(uuid4()),
        decline_code="card_declined",
    ),
    OrderRefunded(
        order_id=an_order.order_id,
        refund_id=str(uuid4()),
        payment_id="p",
        amount_cents=1350,
        gateway_reference="re_1",
    ),
    OrderCancelled(
        order_id=an_order.order_id, reason="late", cancelled_by=3, refund_cents=1350
    ),
    OrderShipped(order_id=an_order.order_id, tracking_number="TRK-9"),
    CustomerForgotten(customer_id=7),
]


def test_the_examples_cover_every_registered_event_type():
    assert {type(e) for e in EXAMPLES} == set(EVENT_TYPES.values())


@pytest.mark.parametrize(
    "event",
    [e for e in EXAMPLES if e.type_name not in UPCASTERS],
    ids=lambda e: e.type_name,
)
def test_every_event_type_round_trips_through_json(event):
    data = json.loads(json.dumps(event_to_data(event)))
    assert event_from_data(event.type_name, data) == event


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.type_name)
def test_every_event_type_is_dumped_as_the_generic_walk_dumps_it(event):
    data = event_to_data(event)
    assert data == _dump(event)
    # The same JSON text too: the same keys in the same order, lists not tuples.
    assert json.dumps(data) == json.dumps(_dump(event))


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Nested:
    id: UUID
    maybe: UUID | None
    tags: tuple[str, ...]


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Shapes(OrderShipped):
    """Field shapes no event has yet: the dumper must still equal the walk."""

    optional_id: UUID | None
    optional_old_style: typing.Optional[UUID]  # noqa: UP045 -- the old spelling
    ids: tuple[UUID, ...]
    nested: _Nested
    nested_many: tuple[_Nested, ...]
    optional_nested: _Nested | None
    pair: tuple[UUID, int]
    listed: list[UUID]
    mapping: dict[str, Any]
    anything: Any
    flag: bool
    ratio: float


def _shapes(*, present: bool) -> _Shapes:
    nested = _Nested(id=uuid4(), maybe=uuid4() if present else None, tags=("a", "b"))
    return _Shapes(
        order_id=uuid4(),
        tracking_number="TRK-1",
        optional_id=uuid4() if present else None,
        optional_old_style=uuid4() if present else None,
        ids=(uuid4(), uuid4()) if present else (),
        nested=nested,
        nested_many=(nested, nested) if present else (),
        optional_nested=nested if present else None,
        pair=(uuid4(), 3),
        listed=[uuid4()],
        mapping={"k": [1, 2]},
        anything=(uuid4(), nested),
        flag=present,
        ratio=0.5,
    )


@pytest.mark.parametrize("present", [True, False], ids=["set", "none or empty"])
def test_nested_optional_and_unrecognised_fields_are_dumped_as_the_walk_does(present):
    event = _shapes(present=present)
    assert event_to_data(event) == _dump(event)
    assert json.dumps(event_to_data(event)) == json.dumps(_dump(event))


@pytest.mark.parametrize(
    "event",
    [e for e in EXAMPLES if e.type_name not in UPCASTERS],
    ids=lambda e: e.type_name,
)
def test_a_loaded_event_holds_what_its_constructor_stores(event):
    data = json.loads(json.dumps(event_to_data(event)))
    loaded = event_from_data(event.type_name, data)

    def attributes(value: typing.Any) -> typing.Any:
        if dataclasses.is_dataclass(value):
            return [(k, attributes(v)) for k, v in vars(value).items()]
        if isinstance(value, tuple):
            return [attributes(v) for v in value]
        return (type(value), value)

    assert attributes(loaded) == attributes(event)


def test_an_event_class_with_a_post_init_is_loaded_through_its_init():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Checked:
        quantity: int

        def __post_init__(self) -> None:
            if self.quantity < 0:
                raise ValueError("negative")

    assert events._load(Checked, {"quantity": 2}) == Checked(quantity=2)
    with pytest.raises(ValueError, match="negative"):
        events._load(Checked, {"quantity": -1})


def test_a_stored_paid_event_reads_as_a_captured_payment_with_its_own_reference():
    event = event_from_data("order.paid.v1", event_to_data(paid(an_order)))
    assert event == PaymentCaptured(
        order_id=an_order.order_id,
        payment_id="ch_1",
        amount_cents=an_order.total_cents,
        card_last4="4242",
        gateway_reference="ch_1",
    )


def test_the_v1_class_writes_what_the_code_before_v2_wrote():
    recorded = V1_RECORDED["data"]
    event = OrderPlacedV1(
        order_id=UUID(recorded["order_id"]),
        customer_id=recorded["customer_id"],
        lines=(
            OrderLine(
                product_id=UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7"),
                sku="MUG-001",
                name="Stoneware mug",
                quantity=2,
                unit_price_cents=1200,
            ),
        ),
        shipping_address=Address(**recorded["shipping_address"]),
        total_cents=2400,
    )
    assert V1_RECORDED["type"] == event.type_name == "order.placed.v1"
    assert event_to_data(event) == recorded


def test_a_stored_v1_order_reads_as_v2_in_euros():
    recorded = V1_RECORDED["data"]
    assert upcast("order.placed.v1", recorded) == (
        "order.placed.v2",
        {**recorded, "currency": "EUR"},
    )
    event = event_from_data("order.placed.v1", recorded)
    assert isinstance(event, OrderPlaced)
    assert event.currency == "EUR"
    assert event.total_cents == 2400
    assert event.lines[0].sku == "MUG-001"
    assert "currency" not in recorded, "the stored payload is left as it was"


def test_new_orders_are_written_as_v2_with_their_currency():
    assert an_order.type_name == "order.placed.v2"
    assert event_to_data(an_order)["currency"] == "EUR"
    assert an_order.shipping_address == ADDRESS


def test_stored_type_names_are_stable_and_versioned():
    assert sorted(EVENT_TYPES) == [
        "customer.forgotten.v1",
        "order.cancelled.v1",
        "order.lines_changed.v1",
        "order.paid.v1",
        "order.payment_captured.v1",
        "order.payment_declined.v1",
        "order.payment_requested.v1",
        "order.placed.v1",
        "order.placed.v2",
        "order.refunded.v1",
        "order.shipped.v1",
        "order.shipping_address_changed.v1",
        "product.registered.v1",
        "product.restocked.v1",
        "product.stock_released.v1",
        "product.stock_reserved.v1",
    ]


def test_serialized_events_hold_plain_json_values():
    data = event_to_data(an_order)
    assert data["order_id"] == str(an_order.order_id)
    assert isinstance(data["lines"], list)
    assert data["lines"][0]["product_id"] == str(mug.product_id)
    assert data["shipping_address"]["country"] == "FR"


def test_an_unknown_event_type_is_refused_when_loading():
    with pytest.raises(UnknownEventTypeError):
        event_from_data("order.teleported.v1", {"order_id": str(uuid4())})


def _tracking_renamed(data: dict) -> dict:
    """A made-up old shape: `tracking` before it was `tracking_number`."""
    data = dict(data)
    data["tracking_number"] = data.pop("tracking")
    return data


def _carrier_dropped(data: dict) -> dict:
    return {key: value for key, value in data.items() if key != "carrier"}


def test_old_payloads_are_upcast_along_the_chain_before_decoding(monkeypatch):
    monkeypatch.setitem(
        UPCASTERS, "order.shipped.v-1", ("order.shipped.v0", _tracking_renamed)
    )
    monkeypatch.setitem(
        UPCASTERS, "order.shipped.v0", ("order.shipped.v1", _carrier_dropped)
    )
    order_id = uuid4()
    stored = {"order_id": str(order_id), "tracking": "TRK-1", "carrier": "post"}

    assert upcast("order.shipped.v-1", stored) == (
        "order.shipped.v1",
        {"order_id": str(order_id), "tracking_number": "TRK-1"},
    )
    assert event_from_data("order.shipped.v-1", stored) == OrderShipped(
        order_id=order_id, tracking_number="TRK-1"
    )
    assert stored["tracking"] == "TRK-1", "the stored payload is left as it was"


def test_the_newest_version_is_not_upcast():
    data = {"order_id": str(uuid4()), "tracking_number": "TRK-2"}
    assert upcast("order.shipped.v1", data) == ("order.shipped.v1", data)


def test_an_upcaster_loop_is_refused(monkeypatch):
    monkeypatch.setitem(UPCASTERS, "a.v1", ("a.v2", dict))
    monkeypatch.setitem(UPCASTERS, "a.v2", ("a.v1", dict))
    with pytest.raises(ValueError, match="loop"):
        upcast("a.v1", {})


def test_every_address_or_free_text_field_is_declared_personal():
    """A new event type with an address or a reason must say it is personal data."""
    for name, cls in EVENT_TYPES.items():
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if hints[field.name] is Address or field.name in {"reason", "name"}:
                if cls.__name__.startswith("Product"):
                    continue  # a product's name is not personal
                assert field.name in cls.personal_fields, (name, field.name)
