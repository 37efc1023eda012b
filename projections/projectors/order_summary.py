"""The order summary: each order's lines, total, status and timeline.

On `customer.forgotten.v1` it erases the customer's personal data from its
rows (`projections/erasure.py`), in the transaction that moves its checkpoint.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from commands_app.domain.events import (
    CustomerForgotten,
    OrderCancelled,
    OrderLinesChanged,
    OrderPlaced,
    OrderRefunded,
    OrderShipped,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRequested,
    ShippingAddressChanged,
)
from commands_app.eventstore import RecordedEvent

from .. import erasure
from ..base import READ_DB, Projector, Staged


def line_rows(lines: Any) -> list[dict[str, Any]]:
    """Return an order's lines as the read model stores them."""
    return [
        {
            "product_id": str(line.product_id),
            "sku": line.sku,
            "name": line.name,
            "quantity": line.quantity,
            "unit_price_cents": line.unit_price_cents,
            "total_cents": line.total_cents,
        }
        for line in lines
    ]


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
        # The entry is as before v2 (no currency: the row has it), so rows that
        # the code before v2 projected equal a rebuild's.
        entry = timeline_entry("placed", recorded, total_cents=event.total_cents)
        self.staged.insert(
            "placed",
            event.order_id,
            {
                "id": str(event.order_id),
                "customer_id": event.customer_id,
                "lines": line_rows(event.lines),
                "address": recorded.data["shipping_address"],
                "total_cents": event.total_cents,
                "currency": event.currency,
                "history": [entry],
                "at": recorded.recorded_at.isoformat(),
                "position": recorded.position,
            },
        )

    def on_order_lines_changed(
        self, event: OrderLinesChanged, recorded: RecordedEvent
    ) -> None:
        entry = timeline_entry(
            "lines_changed",
            recorded,
            total_cents=event.total_cents,
            changed_by=event.changed_by,
        )
        self._move(
            event.order_id,
            None,
            entry,
            recorded,
            lines=line_rows(event.lines),
            total_cents=event.total_cents,
        )

    def on_shipping_address_changed(
        self, event: ShippingAddressChanged, recorded: RecordedEvent
    ) -> None:
        # The address is personal data: the row holds it, the timeline does not.
        entry = timeline_entry(
            "shipping_address_changed", recorded, changed_by=event.changed_by
        )
        self._move(
            event.order_id,
            None,
            entry,
            recorded,
            address=recorded.data["shipping_address"],
        )

    def on_payment_requested(
        self, event: PaymentRequested, recorded: RecordedEvent
    ) -> None:
        entry = timeline_entry(
            "payment_requested",
            recorded,
            amount_cents=event.amount_cents,
            card_last4=event.card_last4,
        )
        self._move(event.order_id, "payment_pending", entry, recorded)

    def on_payment_captured(
        self, event: PaymentCaptured, recorded: RecordedEvent
    ) -> None:
        # Stored `order.paid.v1` events are read as captured payments.
        entry = timeline_entry(
            "paid",
            recorded,
            amount_cents=event.amount_cents,
            card_last4=event.card_last4,
        )
        self._move(event.order_id, "paid", entry, recorded)

    def on_payment_declined(
        self, event: PaymentDeclined, recorded: RecordedEvent
    ) -> None:
        entry = timeline_entry(
            "payment_declined", recorded, decline_code=event.decline_code
        )
        self._move(event.order_id, "placed", entry, recorded)

    def on_order_refunded(self, event: OrderRefunded, recorded: RecordedEvent) -> None:
        entry = timeline_entry("refunded", recorded, amount_cents=event.amount_cents)
        self._move(
            event.order_id, "cancelled", entry, recorded, refunded=event.amount_cents
        )

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

    def on_customer_forgotten(
        self, event: CustomerForgotten, recorded: RecordedEvent
    ) -> None:
        self.staged.insert(
            "forgotten", event.customer_id, {"customer_id": event.customer_id}
        )

    def _move(
        self,
        order_id: Any,
        status: str | None,
        entry: dict[str, Any],
        recorded: RecordedEvent,
        **changed: Any,
    ) -> None:
        """Stage an order's move; `changed` may set `refunded` (cents, else 0),
        `lines`, `total_cents` and `address` (each left as it is when absent)."""
        # None leaves a column as it is: a change of lines keeps the status,
        # a payment keeps the lines.
        self.staged.update(
            "moved",
            order_id,
            recorded.position,
            {
                "id": str(order_id),
                "status": status,
                "entry": entry,
                "refunded": changed.get("refunded", 0),
                "lines": changed.get("lines"),
                "total_cents": changed.get("total_cents"),
                "address": changed.get("address"),
                "at": recorded.recorded_at.isoformat(),
                "position": recorded.position,
            },
        )

    def write(self, staged: Staged) -> None:
        self.sql_rows(
            "INSERT INTO {read_orders} (id, customer_id, status, lines, "
            "shipping_address, total_cents, currency, history, created_at, "
            "updated_at, position) "
            "SELECT id, customer_id, 'placed', lines, address, total_cents, "
            "currency, history, at, at, position FROM jsonb_to_recordset(%s::jsonb) "
            "AS e(id uuid, customer_id bigint, lines jsonb, address jsonb, "
            "total_cents bigint, currency text, history jsonb, at timestamptz, "
            "position bigint) "
            "ORDER BY position ON CONFLICT DO NOTHING",
            staged.inserts("placed"),
        )
        # One UPDATE per order per batch: its last status (and lines, total,
        # address) among the events that set one, its entries appended in
        # position order.
        self.sql_rows(
            "UPDATE {read_orders} AS t SET status = coalesce(c.status, t.status), "
            "lines = coalesce(c.lines, t.lines), "
            "total_cents = coalesce(c.total_cents, t.total_cents), "
            "shipping_address = coalesce(c.address, t.shipping_address), "
            "history = t.history || c.entries, updated_at = c.at, "
            "refunded_cents = t.refunded_cents + c.refunded, "
            "position = c.position FROM ("
            "SELECT e.id, "
            "(array_agg(e.status ORDER BY e.position DESC) "
            "FILTER (WHERE e.status IS NOT NULL))[1] AS status, "
            "(array_agg(e.lines ORDER BY e.position DESC) "
            "FILTER (WHERE e.lines IS NOT NULL))[1] AS lines, "
            "(array_agg(e.total_cents ORDER BY e.position DESC) "
            "FILTER (WHERE e.total_cents IS NOT NULL))[1] AS total_cents, "
            "(array_agg(e.address ORDER BY e.position DESC) "
            "FILTER (WHERE e.address IS NOT NULL))[1] AS address, "
            "jsonb_agg(e.entry ORDER BY e.position) AS entries, "
            "(array_agg(e.at ORDER BY e.position DESC))[1] AS at, "
            "sum(e.refunded)::bigint AS refunded, max(e.position) AS position "
            "FROM jsonb_to_recordset(%s::jsonb) AS e(id uuid, status text, "
            "lines jsonb, total_cents bigint, address jsonb, "
            "entry jsonb, refunded bigint, at timestamptz, position bigint) "
            "JOIN {read_orders} AS o ON o.id = e.id AND e.position > o.position "
            "GROUP BY e.id) AS c WHERE t.id = c.id",
            staged.updates("moved"),
        )
        # After the batch's orders are in: a forgotten customer's rows lose
        # their personal data (the same values a rebuild reads from the events).
        erasure.erase_customers(
            self.sql,
            [row["customer_id"] for row in staged.inserts("forgotten")],
            using=READ_DB,
        )
