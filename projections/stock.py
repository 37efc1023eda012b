"""Announce the catalogue's stock changes once the projection has applied them.

Each catch-up round collects the products whose catalogue rows its events
touched; after the round's commit, their current `available` (one read) is
sent with the `projections.signals.stock_changed` signal (the write side
pushes it to every shopper's socket): one message per round, each
product once, however many of its events the round applied. Pushes are hints:
shops poll again while their socket is down.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from commands_app.eventstore import RecordedEvent

from . import signals
from .base import Projector
from .models import ProductCatalogue

logger = logging.getLogger(__name__)

CATALOGUE = "product_catalogue"


def changed_products(projector: Projector, events: Iterable[RecordedEvent]) -> set[str]:
    """Return the ids of the products whose catalogue rows `events` change."""
    if projector.name != CATALOGUE:
        return set()
    return {
        str(recorded.data["product_id"])
        for recorded in events
        if projector.handles(recorded) and recorded.data.get("product_id")
    }


def stock_of(product_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Return `{id, available, position}` of the products, as the catalogue has them."""
    rows = ProductCatalogue.objects.filter(id__in=sorted(product_ids)).values_list(
        "id", "available", "position"
    )
    return [
        {"id": str(pid), "available": available, "position": position}
        for pid, available, position in rows
    ]


def notify_stock(product_ids: set[str]) -> None:
    """Send the products' new stock with `stock_changed` (after the commit)."""
    if not product_ids:
        return
    try:
        products = stock_of(product_ids)
    except Exception:
        # Shops poll again when no push comes; the read API is the truth.
        logger.warning("stock announcement dropped", exc_info=True)
        return
    signals.send(signals.stock_changed, "stock", products=products)
