"""The runner: gap-safe order, one runner at a time, "projected" announcements."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from django.conf import settings
from django.db import connections
from django.test.utils import CaptureQueriesContext

from projections import signals
from projections.announce import announce_projected
from projections.models import Checkpoint, ProductCatalogue
from projections.projectors import ProductCatalogueProjector
from projections.registry import PROJECTOR_NAMES
from projections.runner import catch_up

from .conftest import settle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

ANNOUNCED: list[list[int]] = []


def collect(sender: Any, *, positions: list[int], **kwargs: Any) -> None:
    """Listen as the write side's push does (`projections.signals.projected`)."""
    ANNOUNCED.append(sorted(positions))


@pytest.fixture
def announced() -> Iterator[list[list[int]]]:
    ANNOUNCED.clear()
    signals.projected.connect(collect)
    yield ANNOUNCED
    signals.projected.disconnect(collect)
    ANNOUNCED.clear()


def raw_connection() -> psycopg.Connection:
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"]
    )


def insert_product(conn: psycopg.Connection, sku: str) -> int:
    product_id = uuid4()
    data = {
        "product_id": str(product_id),
        "sku": sku,
        "name": sku,
        "price_cents": 100,
        "initial_stock": 1,
    }
    row = conn.execute(
        "INSERT INTO events (stream_id, version, type, data, metadata) "
        "VALUES (%s, 1, 'product.registered.v1', %s::jsonb, '{}'::jsonb) "
        "RETURNING position",
        [f"product-{product_id}", json.dumps(data)],
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_transactions_committing_out_of_position_order_are_both_projected():
    early, late = raw_connection(), raw_connection()
    try:
        first = insert_product(early, "EARLY")
        second = insert_product(late, "LATE")
        assert first < second
        late.commit()

        catch_up("product_catalogue")
        assert not ProductCatalogue.objects.exists()
        assert Checkpoint.objects.get(name="product_catalogue").position == 0

        early.commit()
        settle("product_catalogue")
    finally:
        early.close()
        late.close()

    assert set(ProductCatalogue.objects.values_list("sku", flat=True)) == {
        "EARLY",
        "LATE",
    }
    assert Checkpoint.objects.get(name="product_catalogue").position in {
        first,
        second,
    }


def test_two_runners_at_once_apply_each_event_once(store, monkeypatch):
    product = store.product("MUG-1", stock=0)
    for _ in range(120):
        store.restock(product, 1)
    applied: list[int] = []
    original = ProductCatalogueProjector.on_product_restocked

    def counting(self, event, recorded):
        applied.append(recorded.position)
        original(self, event, recorded)

    monkeypatch.setattr(ProductCatalogueProjector, "on_product_restocked", counting)

    def run() -> None:
        try:
            settle("product_catalogue")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(applied) == sorted(set(applied))
    assert len(applied) == 120
    assert ProductCatalogue.objects.get(id=product).available == 120


def test_commands_are_announced_once_every_projection_has_applied_them(
    store, announced
):
    product = store.product("MUG-1")
    order = store.order(product)
    positions = sorted(store.positions)  # all written with a command id

    for name in PROJECTOR_NAMES[:-1]:
        settle(name)
    assert ANNOUNCED == []

    settle(PROJECTOR_NAMES[-1])  # the one behind catches up
    assert [positions] == ANNOUNCED

    store.pay(order)
    settle()
    assert ANNOUNCED[-1] == [store.positions[-1]]
    assert announce_projected() == []


def test_a_round_applies_every_projection_in_one_savepoint_and_pipeline(store):
    # A placed order concerns all four projections. Their writes go in one
    # savepoint and one pipeline: the read database sees, besides them, the
    # round's own statements (locks, checkpoints, dead letters, the moved
    # checkpoints and the mark), not a savepoint pair and a sync per projection.
    mug = store.product("MUG-1", stock=5)
    settle()
    store.order(mug)
    with CaptureQueriesContext(connections["read"]) as read:
        settle()
    statements = [query["sql"] for query in read.captured_queries]
    assert sum(sql.startswith("SAVEPOINT") for sql in statements) == 1, statements
    assert sum("read_dead_letters" in sql for sql in statements) == 1, statements
    assert ProductCatalogue.objects.get(id=mug).available == 4
