"""Stock announcements: once per round, each changed product once, after commit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections, transaction

from projections import signals

from .conftest import settle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

heard: list[list[dict[str, Any]]] = []


def collect(sender: Any, *, products: list[dict[str, Any]], **kwargs: Any) -> None:
    """Listen as the write side's push does (`projections.signals.stock_changed`)."""
    in_transaction = connections["read"].in_atomic_block
    heard.append([{**p, "in_transaction": in_transaction} for p in products])


@pytest.fixture
def listening() -> Iterator[list[list[dict[str, Any]]]]:
    heard.clear()
    signals.stock_changed.connect(collect)
    yield heard
    signals.stock_changed.disconnect(collect)
    heard.clear()


def test_a_round_announces_each_changed_product_once_with_its_committed_stock(
    store, listening
):
    # One transaction: its events become visible to the runner together.
    with transaction.atomic():
        mug = store.product("MUG-1", stock=20)
        tea = store.product("TEA-1", stock=5)
        store.restock(mug, 3)
        store.order(mug, quantity=2)
        store.restock(mug, 1)

    settle()

    (message,) = listening
    assert sorted((p["id"], p["available"]) for p in message) == sorted(
        [(str(mug), 22), (str(tea), 5)]
    )
    assert not any(p["in_transaction"] for p in message)
    with connections["read"].cursor() as cursor:
        cursor.execute("SELECT position FROM read_products WHERE id = %s", [mug])
        assert {p["position"] for p in message if p["id"] == str(mug)} == {
            cursor.fetchone()[0]
        }


def test_rounds_without_stock_changes_announce_nothing(store, listening):
    mug = store.product("MUG-1", stock=20)
    order = store.order(mug, quantity=1)
    settle()
    listening.clear()
    store.pay(order)
    store.ship(order)

    settle()

    assert listening == []
