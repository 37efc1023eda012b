"""The registered projectors, by name (classes imported lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from .base import Projector

# Each projector lives in the module named after it (`projections/projectors/`).
PROJECTORS: dict[str, str] = {
    "product_catalogue": (
        "projections.projectors.product_catalogue.ProductCatalogueProjector"
    ),
    "order_summary": "projections.projectors.order_summary.OrderSummaryProjector",
    "customer_order_history": (
        "projections.projectors.customer_order_history.CustomerOrderHistoryProjector"
    ),
    "daily_sales": "projections.projectors.daily_sales.DailySalesProjector",
}
PROJECTOR_NAMES: tuple[str, ...] = tuple(PROJECTORS)


def projector_names() -> tuple[str, ...]:
    return PROJECTOR_NAMES


def projector_class(name: str) -> type[Projector]:
    """Return the projector class registered under `name` (KeyError if none)."""
    cls: type[Projector] = import_string(PROJECTORS[name])
    return cls
