"""Domain events: past-tense facts, stored under stable versioned type names.

A stored `.v1` payload is never edited: a changed payload gets a new class with
`.v2` and an upcaster from the old one (`UPCASTERS`), applied on every read so
that aggregates and projectors only ever see the newest version.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, get_args, get_origin, get_type_hints
from uuid import UUID


@dataclass(frozen=True, kw_only=True)
class Address:
    name: str
    line1: str
    city: str
    postal_code: str
    country: str


@dataclass(frozen=True, kw_only=True)
class OrderLine:
    product_id: UUID
    sku: str
    name: str
    quantity: int
    unit_price_cents: int

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every domain event; `type_name` is what the store records."""

    type_name: ClassVar[str] = ""
    # Fields holding a customer's personal data: the store encrypts them with
    # the customer's key, and forgetting the customer erases them
    # (commands_app/pii.py). A field listed here must hold strings (or
    # dataclasses/lists of strings): an erased string reads as "[erased]".
    personal_fields: ClassVar[tuple[str, ...]] = ()

    @property
    def aggregate_id(self) -> UUID:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class ProductEvent(Event):
    product_id: UUID

    @property
    def aggregate_id(self) -> UUID:
        return self.product_id


@dataclass(frozen=True, kw_only=True)
class OrderEvent(Event):
    order_id: UUID

    @property
    def aggregate_id(self) -> UUID:
        return self.order_id


@dataclass(frozen=True, kw_only=True)
class ProductRegistered(ProductEvent):
    type_name: ClassVar[str] = "product.registered.v1"
    sku: str
    name: str
    price_cents: int
    initial_stock: int


@dataclass(frozen=True, kw_only=True)
class ProductRestocked(ProductEvent):
    type_name: ClassVar[str] = "product.restocked.v1"
    quantity: int


@dataclass(frozen=True, kw_only=True)
class StockReserved(ProductEvent):
    type_name: ClassVar[str] = "product.stock_reserved.v1"
    order_id: UUID
    quantity: int


@dataclass(frozen=True, kw_only=True)
class StockReleased(ProductEvent):
    type_name: ClassVar[str] = "product.stock_released.v1"
    order_id: UUID
    quantity: int


# The currency of every order placed before orders carried one.
V1_CURRENCY = "EUR"


@dataclass(frozen=True, kw_only=True)
class OrderPlacedV1(OrderEvent):
    """An order placed before orders carried a currency (read as `OrderPlaced`).

    Stored rows of this type are never rewritten: `UPCASTERS` turns each into
    an `order.placed.v2` payload on every read, so this class is never decoded
    from the store. It stays as the record of the old shape (and so that tests
    can write it as the code before v2 did).
    """

    type_name: ClassVar[str] = "order.placed.v1"
    personal_fields: ClassVar[tuple[str, ...]] = ("shipping_address",)
    customer_id: int
    lines: tuple[OrderLine, ...]
    shipping_address: Address
    total_cents: int


@dataclass(frozen=True, kw_only=True)
class OrderPlaced(OrderEvent):
    """An order was placed: its lines, where to ship it and in which currency."""

    type_name: ClassVar[str] = "order.placed.v2"
    personal_fields: ClassVar[tuple[str, ...]] = ("shipping_address",)
    customer_id: int
    lines: tuple[OrderLine, ...]
    shipping_address: Address
    total_cents: int
    currency: str


@dataclass(frozen=True, kw_only=True)
class OrderLinesChanged(OrderEvent):
    """The customer (or staff) replaced an unpaid order's lines.

    `lines` and `total_cents` are the order's whole new lines and total, not a
    difference; the stock moved by the difference in the same append (as
    `StockReserved` and `StockReleased` on the products).
    """

    type_name: ClassVar[str] = "order.lines_changed.v1"
    lines: tuple[OrderLine, ...]
    total_cents: int
    changed_by: int


@dataclass(frozen=True, kw_only=True)
class ShippingAddressChanged(OrderEvent):
    """The customer (or staff) changed where an order not yet shipped goes."""

    type_name: ClassVar[str] = "order.shipping_address_changed.v1"
    personal_fields: ClassVar[tuple[str, ...]] = ("shipping_address",)
    shipping_address: Address
    changed_by: int


@dataclass(frozen=True, kw_only=True)
class OrderPaid(OrderEvent):
    type_name: ClassVar[str] = "order.paid.v1"
    amount_cents: int
    payment_id: str
    card_last4: str


@dataclass(frozen=True, kw_only=True)
class PaymentRequested(OrderEvent):
    """The customer asked to pay: the charge runs afterwards, as an effect."""

    type_name: ClassVar[str] = "order.payment_requested.v1"
    payment_id: UUID
    amount_cents: int
    card_last4: str


@dataclass(frozen=True, kw_only=True)
class PaymentCaptured(OrderEvent):
    """The gateway charged the card for the payment (stored `order.paid.v1` too)."""

    type_name: ClassVar[str] = "order.payment_captured.v1"
    payment_id: str
    amount_cents: int
    card_last4: str
    gateway_reference: str


@dataclass(frozen=True, kw_only=True)
class PaymentDeclined(OrderEvent):
    """The gateway declined the card; the order is payable again."""

    type_name: ClassVar[str] = "order.payment_declined.v1"
    payment_id: str
    decline_code: str


@dataclass(frozen=True, kw_only=True)
class OrderRefunded(OrderEvent):
    """The gateway refunded (part of) a cancelled order's payment."""

    type_name: ClassVar[str] = "order.refunded.v1"
    refund_id: str
    payment_id: str
    amount_cents: int
    gateway_reference: str


@dataclass(frozen=True, kw_only=True)
class OrderCancelled(OrderEvent):
    type_name: ClassVar[str] = "order.cancelled.v1"
    # Free text a person typed about the customer's order.
    personal_fields: ClassVar[tuple[str, ...]] = ("reason",)
    reason: str
    cancelled_by: int
    refund_cents: int


@dataclass(frozen=True, kw_only=True)
class OrderShipped(OrderEvent):
    type_name: ClassVar[str] = "order.shipped.v1"
    tracking_number: str


@dataclass(frozen=True, kw_only=True)
class CustomerForgotten(Event):
    """Staff erased the customer's personal data: their key is destroyed."""

    type_name: ClassVar[str] = "customer.forgotten.v1"
    customer_id: int


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type_name: cls
    for cls in (
        ProductRegistered,
        ProductRestocked,
        StockReserved,
        StockReleased,
        OrderPlacedV1,
        OrderPlaced,
        OrderLinesChanged,
        ShippingAddressChanged,
        OrderPaid,
        PaymentRequested,
        PaymentCaptured,
        PaymentDeclined,
        OrderRefunded,
        OrderCancelled,
        OrderShipped,
        CustomerForgotten,
    )
}


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

# Old type name -> (next type name, a pure function from the old payload to the
# next one). Chains are followed to the newest version: v1 -> v2 -> v3.
# docs/operations.md says how to add one.


def _paid_as_captured(data: dict[str, Any]) -> dict[str, Any]:
    # Before payments became a process, the handler charged and appended
    # `order.paid.v1` at once: a captured payment whose gateway id is its own.
    # Tolerant: a malformed payload must fail where it is decoded (a projection
    # parks it), not in the store's read of every event after it.
    return {**data, "gateway_reference": data.get("payment_id", "")}


def order_placed_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Read an order placed before orders carried a currency: it was in euros.

    Every price and total of a v1 order is in `V1_CURRENCY` (the integration
    events and e-mails of the time said so), so the upcast order says it.
    """
    return {**data, "currency": V1_CURRENCY}


UPCASTERS: dict[str, tuple[str, Upcaster]] = {
    OrderPaid.type_name: (PaymentCaptured.type_name, _paid_as_captured),
    OrderPlacedV1.type_name: (OrderPlaced.type_name, order_placed_v1_to_v2),
}


class UnknownEventTypeError(LookupError):
    """Raise for a stored type name that this code does not know."""


def upcast(type_name: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Return the newest type name and payload for a stored event."""
    seen = {type_name}
    while type_name in UPCASTERS:
        type_name, function = UPCASTERS[type_name]
        if type_name in seen:
            raise ValueError(f"upcasters loop back to {type_name}")
        seen.add(type_name)
        data = function(data)
    return type_name, data


def newest_type_name(type_name: str) -> str:
    """Return the type name that events stored under `type_name` are read as."""
    seen = {type_name}
    while type_name in UPCASTERS and UPCASTERS[type_name][0] not in seen:
        type_name = UPCASTERS[type_name][0]
        seen.add(type_name)
    return type_name


def event_to_data(event: Event) -> dict[str, Any]:
    """Turn an event into JSON-ready data (UUIDs as strings, tuples as lists)."""
    dumper = _DUMPERS.get(type(event))
    if dumper is None:
        dumper = _DUMPERS[type(event)] = _dumper(type(event))
    return dumper(event)


def event_from_data(type_name: str, data: dict[str, Any]) -> Event:
    """Rebuild an event from its stored type name and data, upcast first."""
    type_name, data = upcast(type_name, data)
    try:
        cls = EVENT_TYPES[type_name]
    except KeyError:
        raise UnknownEventTypeError(type_name) from None
    return _load(cls, data)


def _dump(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _dump(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, tuple | list):
        return [_dump(item) for item in value]
    return value


# A dumper turns one field's value into JSON-ready data (None: taken as it is).
Dumper = Callable[[Any], Any] | None

_DUMPERS: dict[type[Any], Callable[[Any], dict[str, Any]]] = {}

# Hints whose values `_dump` returns as they are.
_PLAIN_HINTS: tuple[Any, ...] = (str, int, float, bool, type(None))


def _dumper(cls: type[Any]) -> Callable[[Any], dict[str, Any]]:
    # What `_dump` does, decided once per class from the type hints instead of
    # per value: every append serialises each of its events.
    hints = get_type_hints(cls)
    fields = [(f.name, _field_dumper(hints[f.name])) for f in dataclasses.fields(cls)]

    def dump(value: Any) -> dict[str, Any]:
        data = {}
        for name, convert in fields:
            item = getattr(value, name)
            data[name] = item if convert is None else convert(item)
        return data

    return dump


def _field_dumper(hint: Any) -> Dumper:
    # A hint not recognised here is dumped by the generic walk, whose output
    # the per-class dumpers must equal (tests/commands_app/test_events.py).
    if hint in _PLAIN_HINTS:
        return None
    if hint is UUID:
        return str
    origin = get_origin(hint)
    if origin is tuple:
        return _items_dumper(get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return _optional_dumper(get_args(hint))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        nested = _DUMPERS.get(hint)
        if nested is None:
            nested = _DUMPERS[hint] = _dumper(hint)
        return nested
    return _dump


def _items_dumper(args: tuple[Any, ...]) -> Dumper:
    if len(args) != 2 or args[1] is not Ellipsis:  # tuple[X, Y]: not a sequence
        return _dump
    dump_item = _field_dumper(args[0])
    if dump_item is None:
        return list
    return lambda value: [dump_item(item) for item in value]


def _optional_dumper(args: tuple[Any, ...]) -> Dumper:
    others = [arg for arg in args if arg is not type(None)]
    if len(others) != 1:  # X | Y: which one is decided by the value
        return _dump
    inner = _field_dumper(others[0])
    if inner is None:
        return None
    return lambda value: None if value is None else inner(value)


T = TypeVar("T")

# A converter turns one JSON value into a field's value (None: taken as it is).
Converter = Callable[[Any], Any] | None

_LOADERS: dict[type[Any], Callable[[dict[str, Any]], Any]] = {}
_new = object.__new__
_set = object.__setattr__


def _load(cls: type[T], data: dict[str, Any]) -> T:
    loader = _LOADERS.get(cls)
    if loader is None:
        loader = _LOADERS[cls] = _loader(cls)
    return typing.cast(T, loader(data))


def _loader(cls: type[Any]) -> Callable[[dict[str, Any]], Any]:
    # Resolve the type hints and how to convert each field once per class:
    # loading a stream (or a rebuild) decodes every event of it.
    hints = get_type_hints(cls)
    fields = [
        (f.name, _converter(hints[f.name])) for f in dataclasses.fields(cls) if f.init
    ]
    if not _sets_only_its_fields(cls):

        def construct(data: dict[str, Any]) -> Any:
            return cls(
                **{
                    name: data[name] if convert is None else convert(data[name])
                    for name, convert in fields
                }
            )

        return construct

    def load(data: dict[str, Any]) -> Any:
        # What the frozen dataclass's __init__ does (one object.__setattr__ per
        # field, in order), in one step: the values are its instance dict.
        event = _new(cls)
        _set(
            event,
            "__dict__",
            {
                name: data[name] if convert is None else convert(data[name])
                for name, convert in fields
            },
        )
        return event

    return load


def _sets_only_its_fields(cls: type[Any]) -> bool:
    """Say if `cls(**values)` only stores `values` in its instance dict.

    True for a dataclass with its generated `__init__` (a hand-written one
    is not told apart: none is), every field an argument of it, no
    `__post_init__` and no slots.
    """
    return (
        dataclasses.is_dataclass(cls)
        and "__init__" in vars(cls)
        and all(f.init for f in dataclasses.fields(cls))
        and not hasattr(cls, "__post_init__")
        and not any("__slots__" in vars(base) for base in cls.__mro__[:-1])
    )


def _converter(hint: Any) -> Converter:
    origin = get_origin(hint)
    if origin is tuple:
        (item, _ellipsis) = get_args(hint)
        convert_item = _converter(item)
        if convert_item is None:
            return tuple
        return lambda value: tuple(map(convert_item, value))
    if origin in (typing.Union, types.UnionType):
        inner = _converter(next(a for a in get_args(hint) if a is not type(None)))
        if inner is None:
            return None
        return lambda value: None if value is None else inner(value)
    if hint is UUID:
        return _uuid
    if dataclasses.is_dataclass(hint):
        return lambda value: _load(typing.cast(type[Any], hint), value)
    return None


def _uuid(value: Any) -> UUID:
    return UUID(value if value.__class__ is str else str(value))
