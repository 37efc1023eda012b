"""Read rows written straight into the projection tables, and query counting."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connections
from django.test.utils import CaptureQueriesContext

from projections.models import Checkpoint, DailySales, OrderSummary, ProductCatalogue

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NAMES = ("product_catalogue", "order_summary", "daily_sales")


def product(sku: str = "MUG-1", **fields: Any) -> ProductCatalogue:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "sku": sku,
        "name": f"Product {sku}",
        "price_cents": 1200,
        "available": 10,
        "updated_at": T0,
        "position": 1,
    }
    values.update(fields)
    return ProductCatalogue.objects.create(**values)


def order(customer: Any, *, days: int = 0, **fields: Any) -> OrderSummary:
    product_id = str(uuid.uuid4())
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "customer_id": customer.pk,
        "status": "placed",
        "lines": [
            {
                "product_id": product_id,
                "sku": "MUG-1",
                "name": "Mug",
                "quantity": 2,
                "unit_price_cents": 600,
            }
        ],
        "shipping_address": {"name": "A", "city": "Paris"},
        "total_cents": 1200,
        "history": [{"event": "order.placed", "at": T0.isoformat(), "position": 1}],
        "created_at": T0 + timedelta(days=days),
        "updated_at": T0 + timedelta(days=days),
        "position": 1,
    }
    values.update(fields)
    return OrderSummary.objects.create(**values)


def sales_day(day: date, **fields: Any) -> DailySales:
    values: dict[str, Any] = {
        "day": day,
        "orders": 3,
        "revenue_cents": 3600,
        "units": 6,
        "cancelled_orders": 1,
    }
    values.update(fields)
    return DailySales.objects.create(**values)


def checkpoints(tx_id: int, position: int, names: tuple[str, ...] = NAMES) -> None:
    for name in names:
        Checkpoint.objects.update_or_create(
            name=name, defaults={"tx_id": tx_id, "position": position}
        )


def append_event(stream: str = "test-stream") -> tuple[int, int]:
    """Insert one raw event in the event store; return its (tx_id, position)."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO events (stream_id, version, type, data, metadata) "
            "VALUES (%s, 1, 'test.happened.v1', '{}'::jsonb, '{}'::jsonb) "
            "RETURNING tx_id::text::bigint, position",
            [f"{stream}-{uuid.uuid4()}"],
        )
        tx_id, position = cursor.fetchone()
    return int(tx_id), int(position)


@contextmanager
def count_queries() -> Iterator[dict[str, CaptureQueriesContext]]:
    """Capture the SQL sent to both databases."""
    contexts = {
        alias: CaptureQueriesContext(connections[alias]) for alias in connections
    }
    for context in contexts.values():
        context.__enter__()
    try:
        yield contexts
    finally:
        for context in contexts.values():
            context.__exit__(None, None, None)


def total(contexts: dict[str, CaptureQueriesContext]) -> int:
    return sum(len(context) for context in contexts.values())
