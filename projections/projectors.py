"""The read models' projectors: catalogue, order summary, order history, sales.

Every handler is an idempotent upsert: inserts do nothing when the row exists,
and updates only touch rows whose `position` is below the event's. Events of
one stream reach a projector in version order (a stream's next version is
appended by a transaction that starts after the previous one committed), so a
row's `position` only grows. Every stored time is the event's `recorded_at`,
so that a rebuild gives bit-identical rows.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from commands_app.domain.events import (
    OrderCancelled,
    OrderPaid,
    OrderPlaced,
    OrderShipped,
    ProductRegistered,
    ProductRestocked,
    StockReleased,
    StockReserved,
)
from commands_app.eventstore import RecordedEvent

from .base import Projector


class ProductCatalogueProjector(Projector):
    """Products with their price and available stock."""

    name = "product_catalogue"
    tables = ("read_products",)

    def on_product_registered(
        self, event: ProductRegistered, recorded: RecordedEvent
    ) -> None:
        self.sql(
            "INSERT INTO {read_products} "
            "(id, sku, name, price_cents, available, updated_at, position) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [
                event.product_id,
                event.sku,
                event.name,
                event.price_cents,
                event.initial_stock,
                recorded.recorded_at,
                recorded.position,
            ],
        )

    def on_product_restocked(
        self, event: ProductRestocked, recorded: RecordedEvent
    ) -> None:
        self._adjust(event.product_id, event.quantity, recorded)

    def on_stock_reserved(self, event: StockReserved, recorded: RecordedEvent) -> None:
        self._adjust(event.product_id, -event.quantity, recorded)

    def on_stock_released(self, event: StockReleased, recorded: RecordedEvent) -> None:
        self._adjust(event.product_id, event.quantity, recorded)

    def _adjust(self, product_id: Any, delta: int, recorded: RecordedEvent) -> None:
        self.sql(
            "UPDATE {read_products} SET available = available + %s, "
            "updated_at = %s, position = %s WHERE id = %s AND position < %s",
            [
                delta,
                recorded.recorded_at,
                recorded.position,
                product_id,
                recorded.position,
            ],
        )


def timeline_entry(
    name: str, recorded: RecordedEvent, **details: Any
) -> dict[str, Any]:
    """Return one entry of an order's timeline."""
    return {
        "event": name,
        "at": recorded.recorded_at.astimezone(UTC).isoformat(),
        "position": recorded.position,
        "details": details,
    }


class OrderSummaryProjector(Projector):
    """Orders with lines, total, status and a timeline of what happened."""

    name = "order_summary"
    tables = ("read_orders",)

    def on_order_placed(self, event: OrderPlaced, recorded: RecordedEvent) -> None:
        lines = [
            {
                "product_id": str(line.product_id),
                "sku": line.sku,
                "name": line.name,
                "quantity": line.quantity,
                "unit_price_cents": line.unit_price_cents,
                "total_cents": line.total_cents,
            }
            for line in event.lines
        ]
        address = recorded.data["shipping_address"]
        entry = timeline_entry("placed", recorded, total_cents=event.total_cents)
        self.sql(
            "INSERT INTO {read_orders} (id, customer_id, status, lines, "
            "shipping_address, total_cents, history, created_at, updated_at, position) "
            "VALUES (%s, %s, 'placed', %s::jsonb, %s::jsonb, %s, %s::jsonb, "
            "%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            [
                event.order_id,
                event.customer_id,
                json.dumps(lines),
                json.dumps(address),
                event.total_cents,
                json.dumps([entry]),
                recorded.recorded_at,
                recorded.recorded_at,
                recorded.position,
            ],
        )

    def on_order_paid(self, event: OrderPaid, recorded: RecordedEvent) -> None:
        entry = timeline_entry(
            "paid",
            recorded,
            amount_cents=event.amount_cents,
            card_last4=event.card_last4,
        )
        self._move(event.order_id, "paid", entry, recorded)

    def on_order_cancelled(
        self, event: OrderCancelled, recorded: RecordedEvent
    ) -> None:
        entry = timeline_entry(
            "cancelled",
            recorded,
            reason=event.reason,
            cancelled_by=event.cancelled_by,
            refund_cents=event.refund_cents,
        )
        self._move(event.order_id, "cancelled", entry, recorded)

    def on_order_shipped(self, event: OrderShipped, recorded: RecordedEvent) -> None:
        entry = timeline_entry(
            "shipped", recorded, tracking_number=event.tracking_number
        )
        self._move(event.order_id, "shipped", entry, recorded)

    def _move(
        self, order_id: Any, status: str, entry: dict[str, Any], recorded: RecordedEvent
    ) -> None:
        self.sql(
            "UPDATE {read_orders} SET status = %s, history = history || %s::jsonb, "
            "updated_at = %s, position = %s WHERE id = %s AND position < %s",
            [
                status,
                json.dumps([entry]),
                recorded.recorded_at,
                recorded.position,
                order_id,
                recorded.position,
            ],
        )


class CustomerOrderHistoryProjector(Projector):
    """Each customer's orders, for their history page."""

    name = "customer_order_history"
    tables = ("read_customer_orders",)

    def on_order_placed(self, event: OrderPlaced, recorded: RecordedEvent) -> None:
        self.sql(
            "INSERT INTO {read_customer_orders} (order_id, customer_id, status, "
            "total_cents, item_count, placed_at, position) "
            "VALUES (%s, %s, 'placed', %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [
                event.order_id,
                event.customer_id,
                event.total_cents,
                sum(line.quantity for line in event.lines),
                recorded.recorded_at,
                recorded.position,
            ],
        )

    def on_order_paid(self, event: OrderPaid, recorded: RecordedEvent) -> None:
        self._move(event.order_id, "paid", recorded)

    def on_order_cancelled(
        self, event: OrderCancelled, recorded: RecordedEvent
    ) -> None:
        self._move(event.order_id, "cancelled", recorded)

    def on_order_shipped(self, event: OrderShipped, recorded: RecordedEvent) -> None:
        self._move(event.order_id, "shipped", recorded)

    def _move(self, order_id: Any, status: str, recorded: RecordedEvent) -> None:
        self.sql(
            "UPDATE {read_customer_orders} SET status = %s, position = %s "
            "WHERE order_id = %s AND position < %s",
            [status, recorded.position, order_id, recorded.position],
        )


class DailySalesProjector(Projector):
    """Orders, revenue and units per day (UTC date of the order's placement).

    Each order's contribution is a row of its own; the day's totals move by that
    row's contribution in the same statement that inserts it (or marks it
    cancelled), and only when it does: a replay inserts or changes nothing, so
    it moves nothing. A day is never summed up again from its orders, which cost
    a scan of the whole day per batch (quadratic over a busy day in a rebuild).
    """

    name = "daily_sales"
    tables = ("read_sales_orders", "read_daily_sales")

    def on_order_placed(self, event: OrderPlaced, recorded: RecordedEvent) -> None:
        self.sql(
            "WITH added AS (INSERT INTO {read_sales_orders} "
            "(order_id, day, revenue_cents, units, cancelled, position) "
            "VALUES (%s, %s, %s, %s, false, %s) ON CONFLICT DO NOTHING "
            "RETURNING day, revenue_cents, units, position) "
            "INSERT INTO {read_daily_sales} AS d "
            "(day, orders, revenue_cents, units, cancelled_orders, position) "
            "SELECT day, 1, revenue_cents, units, 0, position FROM added "
            "ON CONFLICT (day) DO UPDATE SET orders = d.orders + 1, "
            "revenue_cents = d.revenue_cents + EXCLUDED.revenue_cents, "
            "units = d.units + EXCLUDED.units, "
            "position = greatest(d.position, EXCLUDED.position)",
            [
                event.order_id,
                recorded.recorded_at.astimezone(UTC).date(),
                event.total_cents,
                sum(line.quantity for line in event.lines),
                recorded.position,
            ],
        )

    def on_order_cancelled(
        self, event: OrderCancelled, recorded: RecordedEvent
    ) -> None:
        self.sql(
            "WITH moved AS (UPDATE {read_sales_orders} "
            "SET cancelled = true, position = %s "
            "WHERE order_id = %s AND position < %s AND NOT cancelled "
            "RETURNING day, revenue_cents, units, position) "
            "UPDATE {read_daily_sales} AS d SET orders = d.orders - 1, "
            "revenue_cents = d.revenue_cents - moved.revenue_cents, "
            "units = d.units - moved.units, "
            "cancelled_orders = d.cancelled_orders + 1, "
            "position = greatest(d.position, moved.position) "
            "FROM moved WHERE d.day = moved.day",
            [recorded.position, event.order_id, recorded.position],
        )
