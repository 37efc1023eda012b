"""The product catalogue: products with their price and available stock."""

from __future__ import annotations

from typing import Any

from commands_app.domain.events import (
    ProductRegistered,
    ProductRestocked,
    StockReleased,
    StockReserved,
)
from commands_app.eventstore import RecordedEvent

from ..base import Projector, Staged


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
