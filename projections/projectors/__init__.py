"""The read models' projectors: catalogue, order summary, order history, sales.

One module per projector, named after it; this package re-exports the four
classes (and the order summary's row helpers, `line_rows` and `timeline_entry`).

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

from .customer_order_history import CustomerOrderHistoryProjector
from .daily_sales import DailySalesProjector
from .order_summary import OrderSummaryProjector, line_rows, timeline_entry
from .product_catalogue import ProductCatalogueProjector

__all__ = [
    "CustomerOrderHistoryProjector",
    "DailySalesProjector",
    "OrderSummaryProjector",
    "ProductCatalogueProjector",
    "line_rows",
    "timeline_entry",
]
