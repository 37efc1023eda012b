"""The public contract: internal order events turned into integration events.

Integration events are a published interface for other services, separate from
the internal domain events: they carry no internal fields (command ids, card
digits, gateway references) and no personal data (no name, no address, no free
text a customer typed); the customer is an opaque id. docs/integration-events.md
is the contract's documentation; `schemas/` holds a JSON Schema per public type.

Mapped by stored type name, so that an internal type is published as soon as
it exists. Product events are internal only.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections

from .. import eventstore
from ..domain.events import UPCASTERS
from ..eventstore import RecordedEvent

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"

# Namespace of the public event ids: uuid5(NAMESPACE, "<stream_id>/<version>").
NAMESPACE = uuid.UUID("6f1e1f0c-8a53-4c59-9d0e-3c1b8e7f3a21")
ORDER_STREAM_PREFIX = "order-"

Payload = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class PublicType:
    """One public event type and version, and how to build its data."""

    name: str
    version: int
    data: Payload

    @property
    def schema_path(self) -> Path:
        """Return the file of this type's JSON Schema."""
        return SCHEMA_DIR / f"{self.name}.v{self.version}.json"


def _placed(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "customer_id": customer_ref(int(data["customer_id"])),
        "lines": [
            {
                "product_id": str(line["product_id"]),
                "sku": line["sku"],
                "quantity": line["quantity"],
                "unit_price_cents": line["unit_price_cents"],
            }
            for line in data["lines"]
        ],
        "total_cents": data["total_cents"],
        # Stored `order.placed.v1` events are read as v2 with the currency
        # they were placed in (domain/events.py `order_placed_v1_to_v2`).
        "currency": data["currency"],
    }


def _lines_changed(data: dict[str, Any]) -> dict[str, Any]:
    # In the currency of the order's `orders.order_placed`; no address, no user.
    return {
        "lines": [
            {
                "product_id": str(line["product_id"]),
                "sku": line["sku"],
                "quantity": line["quantity"],
                "unit_price_cents": line["unit_price_cents"],
            }
            for line in data["lines"]
        ],
        "total_cents": data["total_cents"],
    }


def _paid(data: dict[str, Any]) -> dict[str, Any]:
    return {"amount_cents": data["amount_cents"], "currency": "EUR"}


def _shipped(data: dict[str, Any]) -> dict[str, Any]:
    return {"tracking_number": data.get("tracking_number") or None}


def _cancelled(data: dict[str, Any]) -> dict[str, Any]:
    # The reason is free text a person typed: it stays internal.
    return {}


def _refunded(data: dict[str, Any]) -> dict[str, Any]:
    return {"amount_cents": data["amount_cents"], "currency": "EUR"}


PLACED = PublicType("orders.order_placed", 1, _placed)
LINES_CHANGED = PublicType("orders.order_lines_changed", 1, _lines_changed)
PAID = PublicType("orders.order_paid", 1, _paid)
SHIPPED = PublicType("orders.order_shipped", 1, _shipped)
CANCELLED = PublicType("orders.order_cancelled", 1, _cancelled)
REFUNDED = PublicType("orders.order_refunded", 1, _refunded)

PUBLIC_TYPES: tuple[PublicType, ...] = (
    PLACED,
    LINES_CHANGED,
    PAID,
    SHIPPED,
    CANCELLED,
    REFUNDED,
)

# Stored (internal) type name -> the public type it is published as. Internal
# types not listed (product events, a payment's request or decline) are not
# published; `previous_sequence` lets consumers see past them.
PUBLISHED: dict[str, PublicType] = {
    # `order.placed.v1` is read as v2 (upcast), and published as v2 is.
    "order.placed.v2": PLACED,
    # A change of address is personal data: it stays internal.
    "order.lines_changed.v1": LINES_CHANGED,
    # The first payment flow's event and the payment process's capture: one fact.
    "order.paid.v1": PAID,
    "order.payment_captured.v1": PAID,
    "order.shipped.v1": SHIPPED,
    "order.cancelled.v1": CANCELLED,
    "order.refunded.v1": REFUNDED,
}


def event_id(event: RecordedEvent) -> str:
    """Return the public id of `event`: the same on every delivery."""
    return str(uuid.uuid5(NAMESPACE, f"{event.stream_id}/{event.version}"))


def customer_ref(customer_id: int) -> str:
    """Return the opaque public id of a customer (a keyed hash, not reversible)."""
    key = str(settings.INTEGRATION_EVENTS_CUSTOMER_KEY).encode()
    digest = hmac.new(key, f"customer:{customer_id}".encode(), hashlib.sha256)
    return "cus_" + digest.hexdigest()[:32]


def is_published(type_name: str) -> bool:
    """Tell whether events stored under `type_name` are published."""
    return type_name in PUBLISHED


def to_public(event: RecordedEvent) -> dict[str, Any] | None:
    """Return the integration event for `event`, or None if it stays internal.

    Reads the order's stream for `previous_sequence` (see `build`).
    """
    if PUBLISHED.get(event.type) is None:
        return None
    if not event.stream_id.startswith(ORDER_STREAM_PREFIX):
        return None
    return build(event, previous_sequence=previous_published_version(event))


def build(event: RecordedEvent, *, previous_sequence: int | None) -> dict[str, Any]:
    """Return the integration event for a published `event`.

    `sequence` is the event's version in its order stream; `previous_sequence`
    the version of the order's previous published event (None for the first):
    internal events between them are not gaps.
    """
    public = PUBLISHED[event.type]
    return {
        "event_id": event_id(event),
        "type": public.name,
        "version": public.version,
        "occurred_at": event.recorded_at.isoformat(),
        "order_id": event.stream_id.removeprefix(ORDER_STREAM_PREFIX),
        "sequence": event.version,
        "previous_sequence": previous_sequence,
        "data": public.data(event.data),
    }


def previous_published_version(event: RecordedEvent) -> int | None:
    """Return the version of the stream's last published event before `event`."""
    if event.version <= 1:
        return None
    with connections[eventstore.DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT max(version) FROM events "
            "WHERE stream_id = %s AND version < %s AND type = ANY(%s)",
            [event.stream_id, event.version, stored_type_names()],
        )
        row = cursor.fetchone()
    return None if row is None or row[0] is None else int(row[0])


def stored_type_names() -> list[str]:
    """Return every stored type name that reads as a published type.

    Events are stored under the name they were written with; an upcaster
    (domain/events.py) may turn an old name into a published one.
    """
    names = []
    for name in {*PUBLISHED, *UPCASTERS}:
        newest, seen = name, {name}
        while newest in UPCASTERS and UPCASTERS[newest][0] not in seen:
            newest = UPCASTERS[newest][0]
            seen.add(newest)
        if newest in PUBLISHED:
            names.append(name)
    return sorted(names)
