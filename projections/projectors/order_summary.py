"""The read models' projectors: catalogue, order summary, order history, sales.

Handlers stage rows; each projector's `write()` applies a batch's rows with one
statement per kind, and the result is the same as applying its events one by
one. Inserts do nothing when the row exists, and updates only take the events
whose position is above the row's `position`. Events of one stream reach a
projector in version order (a stream's next version is appended by a
transaction that starts after the previous one committed), so a row's
`position` only grows, and an update of a batch sums (or keeps the last of)
the events above it. Every stored time is the event's `recorded_at`, so that a
rebuild gives bit-identical rows.
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
    ProductRegistered,
    ProductRestocked,
    ShippingAddressChanged,
    StockReleased,
    StockReserved,
)
from commands_app.eventstore import RecordedEvent

from .. import erasure
from ..base import READ_DB, Projector, Staged


class ProductCatalogueProjector(Projector):
    """Products with their price and available stock."""

    name = "product_catalogue"
    tables = ("read_products",)

    def on_product_registered(
        self, event: ProductRegistered, recorded: RecordedEvent
    ) -> None:
        self.staged.insert(
            "registered",
            event.product_id,
            {
                "id": str(event.product_id),
                "sku": event.sku,
                "name": event.name,
                "price_cents": event.price_cents,
                "available": event.initial_stock,
                "at": recorded.recorded_at.isoformat(),
                "position": recorded.position,
            },
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
        self.staged.update(
            "adjusted",
            product_id,
            recorded.position,
            {
                "id": str(product_id),
                "delta": delta,
                "at": recorded.recorded_at.isoformat(),
                "position": recorded.position,
            },
        )

    def write(self, staged: Staged) -> None:
        self.sql_rows(
            "INSERT INTO {read_products} "
            "(id, sku, name, price_cents, available, updated_at, position) "
            "SELECT id, sku, name, price_cents, available, at, position "
            "FROM jsonb_to_recordset(%s::jsonb) AS e(id uuid, sku text, name text, "
            "price_cents bigint, available bigint, at timestamptz, position bigint) "
            "ORDER BY position ON CONFLICT DO NOTHING",
            staged.inserts("registered"),
        )
        # One UPDATE per product per batch, by the sum of its events' deltas.
        self.sql_rows(
            "UPDATE {read_products} AS t SET available = t.available + c.delta, "
            "updated_at = c.at, position = c.position FROM ("
            "SELECT e.id, sum(e.delta)::bigint AS delta, max(e.position) AS position, "
            "(array_agg(e.at ORDER BY e.position DESC))[1] AS at "
            "FROM jsonb_to_recordset(%s::jsonb) "
            "AS e(id uuid, delta bigint, at timestamptz, position bigint) "
            "JOIN {read_products} AS p ON p.id = e.id AND e.position > p.position "
            "GROUP BY e.id) AS c WHERE t.id = c.id",
            staged.updates("adjusted"),
        )


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


class DailySalesProjector(Projector):
    """Orders, revenue and units per day (UTC date of the order's placement).

    Each order's contribution is a row of its own; the day's totals move by the
    sum of the contributions that a statement inserts (or marks cancelled), and
    only by those: a replay inserts or changes nothing, so it moves nothing. A
    day is never summed up again from its orders, which cost a scan of the
    whole day per batch (quadratic over a busy day in a rebuild).
    """

    name = "daily_sales"
    tables = ("read_sales_orders", "read_daily_sales")

    def on_order_placed(self, event: OrderPlaced, recorded: RecordedEvent) -> None:
        self.staged.insert(
            "placed",
            event.order_id,
            {
                "order_id": str(event.order_id),
                "day": recorded.recorded_at.astimezone(UTC).date().isoformat(),
                "revenue_cents": event.total_cents,
                "units": sum(line.quantity for line in event.lines),
                "position": recorded.position,
            },
        )

    def on_order_lines_changed(
        self, event: OrderLinesChanged, recorded: RecordedEvent
    ) -> None:
        self.staged.update(
            "changed",
            event.order_id,
            recorded.position,
            {
                "order_id": str(event.order_id),
                "revenue_cents": event.total_cents,
                "units": sum(line.quantity for line in event.lines),
                "position": recorded.position,
            },
        )

    def on_order_cancelled(
        self, event: OrderCancelled, recorded: RecordedEvent
    ) -> None:
        self.staged.update(
            "cancelled",
            event.order_id,
            recorded.position,
            {"order_id": str(event.order_id), "position": recorded.position},
        )

    def write(self, staged: Staged) -> None:
        self.sql_rows(
            "WITH added AS (INSERT INTO {read_sales_orders} "
            "(order_id, day, revenue_cents, units, cancelled, position) "
            "SELECT order_id, day, revenue_cents, units, false, position "
            "FROM jsonb_to_recordset(%s::jsonb) AS e(order_id uuid, day date, "
            "revenue_cents bigint, units integer, position bigint) "
            "ORDER BY position ON CONFLICT DO NOTHING "
            "RETURNING day, revenue_cents, units, position) "
            "INSERT INTO {read_daily_sales} AS d "
            "(day, orders, revenue_cents, units, cancelled_orders, position) "
            "SELECT day, count(*), sum(revenue_cents), sum(units), 0, max(position) "
            "FROM added GROUP BY day "
            "ON CONFLICT (day) DO UPDATE SET orders = d.orders + EXCLUDED.orders, "
            "revenue_cents = d.revenue_cents + EXCLUDED.revenue_cents, "
            "units = d.units + EXCLUDED.units, "
            "position = greatest(d.position, EXCLUDED.position)",
            staged.inserts("placed"),
        )
        # A change of lines moves its day by the difference with the order's
        # row (its last change above the row). Lines change only before an
        # order is paid or cancelled, so this runs before the cancellations.
        self.sql_rows(
            "WITH moved AS (UPDATE {read_sales_orders} AS s "
            "SET revenue_cents = c.revenue_cents, units = c.units, "
            "position = c.position FROM ("
            "SELECT DISTINCT ON (e.order_id) e.order_id, e.revenue_cents, e.units, "
            "e.position, e.revenue_cents - o.revenue_cents AS revenue_delta, "
            "e.units - o.units AS units_delta "
            "FROM jsonb_to_recordset(%s::jsonb) AS e(order_id uuid, "
            "revenue_cents bigint, units integer, position bigint) "
            "JOIN {read_sales_orders} AS o ON o.order_id = e.order_id "
            "AND e.position > o.position AND NOT o.cancelled "
            "ORDER BY e.order_id, e.position DESC) AS c "
            "WHERE s.order_id = c.order_id "
            "RETURNING s.day, c.revenue_delta, c.units_delta, s.position), "
            "by_day AS (SELECT day, sum(revenue_delta) AS revenue, "
            "sum(units_delta) AS units, max(position) AS position "
            "FROM moved GROUP BY day) "
            "UPDATE {read_daily_sales} AS d SET revenue_cents = d.revenue_cents "
            "+ m.revenue, units = d.units + m.units, "
            "position = greatest(d.position, m.position) "
            "FROM by_day AS m WHERE d.day = m.day",
            staged.updates("changed"),
        )
        # An order is cancelled once: by the first of its events above its row.
        self.sql_rows(
            "WITH moved AS (UPDATE {read_sales_orders} AS s "
            "SET cancelled = true, position = c.position FROM ("
            "SELECT DISTINCT ON (e.order_id) e.order_id, e.position "
            "FROM jsonb_to_recordset(%s::jsonb) AS e(order_id uuid, position bigint) "
            "JOIN {read_sales_orders} AS o ON o.order_id = e.order_id "
            "AND e.position > o.position AND NOT o.cancelled "
            "ORDER BY e.order_id, e.position) AS c WHERE s.order_id = c.order_id "
            "RETURNING s.day, s.revenue_cents, s.units, s.position), "
            "by_day AS (SELECT day, count(*) AS orders, sum(revenue_cents) AS revenue, "
            "sum(units) AS units, max(position) AS position FROM moved GROUP BY day) "
            "UPDATE {read_daily_sales} AS d SET orders = d.orders - m.orders, "
            "revenue_cents = d.revenue_cents - m.revenue, units = d.units - m.units, "
            "cancelled_orders = d.cancelled_orders + m.orders, "
            "position = greatest(d.position, m.position) "
            "FROM by_day AS m WHERE d.day = m.day",
            staged.updates("cancelled"),
        )
