"""Helpers to write events straight into the store and to read projection rows."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from django.db import connections, transaction

from commands_app import eventstore
from commands_app.domain.events import (
    Address,
    Event,
    OrderCancelled,
    OrderLine,
    OrderPaid,
    OrderPlaced,
    OrderShipped,
    ProductRegistered,
    ProductRestocked,
    StockReleased,
    StockReserved,
)
from commands_app.eventstore import NewEvents
from projections import rebuild, runner
from projections.models import Checkpoint
from projections.registry import PROJECTOR_NAMES, projector_class
from projections.runner import CatchUpResult, catch_up

ADDRESS = Address(
    name="Alice",
    line1="1 rue de Rivoli",
    city="Paris",
    postal_code="75001",
    country="FR",
)


class Store:
    """Append events to streams, tracking each stream's version."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.positions: list[int] = []

    def append(
        self, stream_id: str, *events: Event, command_id: str | None = None
    ) -> list[int]:
        version = self.versions.get(stream_id, 0)
        metadata = {"command_id": command_id or str(uuid4()), "user_id": 1}
        with transaction.atomic():
            positions = eventstore.append(
                [NewEvents(stream_id, version, events)], metadata=metadata
            )
        self.versions[stream_id] = version + len(events)
        self.positions += positions
        return positions

    def append_unknown(self, stream_id: str = "mystery-1") -> int:
        version = self.versions.get(stream_id, 0) + 1
        self.versions[stream_id] = version
        with transaction.atomic(), connections["default"].cursor() as cursor:
            cursor.execute(
                "INSERT INTO events (stream_id, version, type, data, metadata) "
                "VALUES (%s, %s, 'mystery.happened.v1', %s::jsonb, '{}'::jsonb) "
                "RETURNING position",
                [stream_id, version, json.dumps({"what": "unknown"})],
            )
            return int(cursor.fetchone()[0])

    def product(self, sku: str, stock: int = 10, price: int = 1200) -> UUID:
        product_id = uuid4()
        self.append(
            f"product-{product_id}",
            ProductRegistered(
                product_id=product_id,
                sku=sku,
                name=f"Product {sku}",
                price_cents=price,
                initial_stock=stock,
            ),
        )
        return product_id

    def order(
        self, product_id: UUID, quantity: int = 1, customer: int = 7, price: int = 1200
    ) -> UUID:
        order_id = uuid4()
        line = OrderLine(
            product_id=product_id,
            sku="X",
            name="Product",
            quantity=quantity,
            unit_price_cents=price,
        )
        with transaction.atomic():
            self.append(
                f"product-{product_id}",
                StockReserved(
                    product_id=product_id, order_id=order_id, quantity=quantity
                ),
            )
            self.append(
                f"order-{order_id}",
                OrderPlaced(
                    order_id=order_id,
                    customer_id=customer,
                    lines=(line,),
                    shipping_address=ADDRESS,
                    total_cents=quantity * price,
                    currency="EUR",
                ),
            )
        return order_id

    def pay(self, order_id: UUID, amount: int = 1200) -> None:
        self.append(
            f"order-{order_id}",
            OrderPaid(
                order_id=order_id,
                amount_cents=amount,
                payment_id="pay-1",
                card_last4="4242",
            ),
        )

    def ship(self, order_id: UUID) -> None:
        self.append(
            f"order-{order_id}", OrderShipped(order_id=order_id, tracking_number="TRK1")
        )

    def cancel(self, order_id: UUID, product_id: UUID, quantity: int = 1) -> None:
        self.append(
            f"order-{order_id}",
            OrderCancelled(
                order_id=order_id, reason="changed mind", cancelled_by=7, refund_cents=0
            ),
        )
        self.append(
            f"product-{product_id}",
            StockReleased(product_id=product_id, order_id=order_id, quantity=quantity),
        )

    def restock(self, product_id: UUID, quantity: int) -> None:
        self.append(
            f"product-{product_id}",
            ProductRestocked(product_id=product_id, quantity=quantity),
        )


@pytest.fixture
def store() -> Iterator[Store]:
    """A store whose events only this test's runners apply.

    Every append wakes the projector relays; a worker of another test (the
    session's) would apply the events behind the test's back, with projectors
    the test did not patch. Its relay pauses while this holds PAUSE_LOCK.
    """
    params = connections["read"].get_connection_params()
    with psycopg.connect(
        host=params["host"],
        port=params["port"],
        dbname=params["dbname"],
        user=params["user"],
        autocommit=True,
    ) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [runner.PAUSE_LOCK])
        yield Store()


def seed_history(store: Store) -> dict[str, Any]:
    """Write a varied history: products, orders paid, shipped, cancelled."""
    mug = store.product("MUG-1", stock=20)
    tea = store.product("TEA-1", stock=5, price=450)
    placed = store.order(mug, quantity=2)
    paid = store.order(tea, quantity=1, customer=8, price=450)
    store.pay(paid, amount=450)
    shipped = store.order(mug)
    store.pay(shipped)
    store.ship(shipped)
    cancelled = store.order(mug, quantity=3)
    store.cancel(cancelled, mug, quantity=3)
    store.restock(tea, 10)
    store.append_unknown()
    return {
        "mug": mug,
        "tea": tea,
        "placed": placed,
        "paid": paid,
        "shipped": shipped,
        "cancelled": cancelled,
    }


def rows(name: str, suffix: str = "") -> dict[str, list[tuple[Any, ...]]]:
    """Return every row of a projection's tables, in a stable order."""
    result = {}
    with connections["read"].cursor() as cursor:
        for table in projector_class(name).tables:
            cursor.execute(f'SELECT * FROM "{table}{suffix}" ORDER BY 1')
            result[table] = cursor.fetchall()
    return result


def rows_applied_twice(name: str) -> dict[str, list[tuple[Any, ...]]]:
    """Apply every event twice to shadow tables of a projection; return their rows."""
    projector = projector_class(name)(suffix="__twice")
    rebuild.create_shadow_tables(projector)
    try:
        with transaction.atomic(using="read"):
            for recorded in eventstore.read_after(eventstore.Position(), limit=1000):
                projector.apply(recorded)
                projector.apply(recorded)
        return rows(name, "__twice")
    finally:
        rebuild.drop_shadow_tables(projector)


def committed_head() -> tuple[int, int]:
    """Return the last committed event, ignoring the readers' horizon."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT tx_id::text::bigint, position FROM events "
            "ORDER BY events.tx_id DESC, events.position DESC LIMIT 1"
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else (0, 0)


def settle(name: str | None = None, timeout: float = 30.0) -> CatchUpResult:
    """Catch up until every committed event is applied; return the last result.

    The readers' horizon is cluster-wide: a transaction of another session on
    the same PostgreSQL server holds new events back for a moment.
    """
    target = committed_head()
    names = [name] if name else list(PROJECTOR_NAMES)
    deadline = time.monotonic() + timeout
    errors: dict[str, str] = {}
    while True:
        result = catch_up(name)
        errors.update(result.errors)
        reached = Checkpoint.objects.filter(name__in=names).values_list(
            "tx_id", "position"
        )
        if len(reached) == len(names) and all(tuple(r) >= target for r in reached):
            result.errors = errors
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"projections stayed behind {target}")
        time.sleep(0.05)


@pytest.fixture
def fast_retries(settings: Any) -> None:
    settings.PROJECTION_RETRY_DELAYS = (0.01, 0.02)
