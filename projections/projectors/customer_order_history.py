"""The customer order history: each customer's orders, for their history page."""

from __future__ import annotations

from typing import Any

from commands_app.domain.events import (
    OrderCancelled,
    OrderLinesChanged,
    OrderPlaced,
    OrderShipped,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRequested,
)
from commands_app.eventstore import RecordedEvent

from ..base import Projector, Staged


class CustomerOrderHistoryProjector(Projector):
    """Each customer's orders, for their history page."""

    name = "customer_order_history"
    tables = ("read_customer_orders",)

    def on_order_placed(self, event: OrderPlaced, recorded: RecordedEvent) -> None:
        self.staged.insert(
            "placed",
            event.order_id,
            {
                "order_id": str(event.order_id),
                "customer_id": event.customer_id,
                "total_cents": event.total_cents,
                "item_count": sum(line.quantity for line in event.lines),
                "at": recorded.recorded_at.isoformat(),
                "position": recorded.position,
            },
        )

    def on_order_lines_changed(
        self, event: OrderLinesChanged, recorded: RecordedEvent
    ) -> None:
        self._move(
            event.order_id,
            None,
            recorded,
            total_cents=event.total_cents,
            item_count=sum(line.quantity for line in event.lines),
        )

    def on_payment_requested(
        self, event: PaymentRequested, recorded: RecordedEvent
    ) -> None:
        self._move(event.order_id, "payment_pending", recorded)

    def on_payment_captured(
        self, event: PaymentCaptured, recorded: RecordedEvent
    ) -> None:
        self._move(event.order_id, "paid", recorded)

    def on_payment_declined(
        self, event: PaymentDeclined, recorded: RecordedEvent
    ) -> None:
        self._move(event.order_id, "placed", recorded)

    def on_order_cancelled(
        self, event: OrderCancelled, recorded: RecordedEvent
    ) -> None:
        self._move(event.order_id, "cancelled", recorded)

    def on_order_shipped(self, event: OrderShipped, recorded: RecordedEvent) -> None:
        self._move(event.order_id, "shipped", recorded)

    def _move(
        self,
        order_id: Any,
        status: str | None,
        recorded: RecordedEvent,
        *,
        total_cents: int | None = None,
        item_count: int | None = None,
    ) -> None:
        self.staged.update(
            "moved",
            order_id,
            recorded.position,
            {
                "id": str(order_id),
                "status": status,
                "total_cents": total_cents,
                "item_count": item_count,
                "position": recorded.position,
            },
        )

    def write(self, staged: Staged) -> None:
        self.sql_rows(
            "INSERT INTO {read_customer_orders} (order_id, customer_id, status, "
            "total_cents, item_count, placed_at, position) "
            "SELECT order_id, customer_id, 'placed', total_cents, item_count, at, "
            "position FROM jsonb_to_recordset(%s::jsonb) AS e(order_id uuid, "
            "customer_id bigint, total_cents bigint, item_count integer, "
            "at timestamptz, position bigint) "
            "ORDER BY position ON CONFLICT DO NOTHING",
            staged.inserts("placed"),
        )
        self.sql_rows(
            "UPDATE {read_customer_orders} AS t "
            "SET status = coalesce(c.status, t.status), "
            "total_cents = coalesce(c.total_cents, t.total_cents), "
            "item_count = coalesce(c.item_count, t.item_count), "
            "position = c.position FROM ("
            "SELECT e.id, "
            "(array_agg(e.status ORDER BY e.position DESC) "
            "FILTER (WHERE e.status IS NOT NULL))[1] AS status, "
            "(array_agg(e.total_cents ORDER BY e.position DESC) "
            "FILTER (WHERE e.total_cents IS NOT NULL))[1] AS total_cents, "
            "(array_agg(e.item_count ORDER BY e.position DESC) "
            "FILTER (WHERE e.item_count IS NOT NULL))[1] AS item_count, "
            "max(e.position) AS position "
            "FROM jsonb_to_recordset(%s::jsonb) AS e(id uuid, status text, "
            "total_cents bigint, item_count integer, position bigint) "
            "JOIN {read_customer_orders} AS o "
            "ON o.order_id = e.id AND e.position > o.position "
            "GROUP BY e.id) AS c WHERE t.order_id = c.id",
            staged.updates("moved"),
        )
