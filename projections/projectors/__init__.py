"""The read models' projectors (for now all in `order_summary.py`)."""

from __future__ import annotations

from .order_summary import (
    CustomerOrderHistoryProjector,
    DailySalesProjector,
    OrderSummaryProjector,
    ProductCatalogueProjector,
    line_rows,
    timeline_entry,
)

__all__ = [
    "CustomerOrderHistoryProjector",
    "DailySalesProjector",
    "OrderSummaryProjector",
    "ProductCatalogueProjector",
    "line_rows",
    "timeline_entry",
]
