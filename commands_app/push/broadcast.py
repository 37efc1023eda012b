"""Group pushes that belong to no command: staff dashboards and the catalogue.

The projections' lag and stock come from the read side's signals
(`projections.signals`, connected in `commands_app.apps`); command stats from
the dashboard beat (`commands_app.dashboard`).
"""

from __future__ import annotations

from typing import Any

from .layer import CATALOGUE_GROUP, STAFF_GROUP, post, send_to_group


def push_projection_lag(projections: list[dict[str, Any]]) -> bool:
    """Send the projections' lag to staff sockets (`lag_reported`)."""
    return send_to_group(
        STAFF_GROUP, {"type": "projection.lag", "projections": projections}
    )


def push_stock(products: list[dict[str, Any]]) -> bool:
    """Send the catalogue's new stock to every shopper (`stock_changed`).

    One message per projection round: `products` holds each changed product
    once, `[{id, available, position}]`, after the read model committed it.
    Posted: the projection worker goes on to its next round at once.
    """
    if not products:
        return False
    return post([(CATALOGUE_GROUP, {"type": "catalogue.stock", "products": products})])


def push_command_stats(stats: dict[str, Any]) -> bool:
    """Send recent command throughput and outcomes to staff sockets."""
    return send_to_group(STAFF_GROUP, {"type": "command.stats", **stats})


def on_lag_reported(sender: Any, *, lag: list[dict[str, Any]], **kwargs: Any) -> None:
    """Receive `projections.signals.lag_reported` (connected in apps.ready)."""
    push_projection_lag(lag)


def on_stock_changed(
    sender: Any, *, products: list[dict[str, Any]], **kwargs: Any
) -> None:
    """Receive `projections.signals.stock_changed` (connected in apps.ready)."""
    push_stock(products)
