"""Daily sales: orders, revenue and units per day."""

from __future__ import annotations

from datetime import UTC

from commands_app.domain.events import OrderCancelled, OrderLinesChanged, OrderPlaced
from commands_app.eventstore import RecordedEvent

from ..base import Projector, Staged


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
