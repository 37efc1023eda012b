"""Generate stored events and read rows with COPY, for the rebuild and read figures."""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any

import psycopg

from . import common

PRODUCTS = 1000
CHUNK = 20_000


def _order_data(order_id: str, customer: int, product: dict[str, Any]) -> str:
    return json.dumps(
        {
            "order_id": order_id,
            "customer_id": customer,
            "lines": [
                {
                    "product_id": product["id"],
                    "sku": product["sku"],
                    "name": product["name"],
                    "quantity": 1,
                    "unit_price_cents": 1999,
                }
            ],
            "shipping_address": common.ADDRESS,
            "total_cents": 1999,
        }
    )


def events(count: int, customer: int) -> int:
    """Store about `count` events: products, then orders with their reservations.

    Each chunk is one transaction of its own, as real appends would be.
    """
    products = [
        {"id": str(uuid.uuid4()), "sku": f"SEED-{i:06d}", "name": f"Seed product {i}"}
        for i in range(PRODUCTS)
    ]
    versions = dict.fromkeys((p["id"] for p in products), 1)
    meta = json.dumps({"command_id": str(uuid.uuid4()), "recorded_by": "bench"})
    written = 0
    columns = "COPY events (stream_id, version, type, data, metadata) FROM STDIN"
    with psycopg.connect(f"{common.PG}/{common.DB_NAME}") as conn:
        with conn.cursor().copy(columns) as copy:
            for p in products:
                data = {
                    "product_id": p["id"],
                    "sku": p["sku"],
                    "name": p["name"],
                    "price_cents": 1999,
                    "initial_stock": 10**9,
                }
                copy.write_row(
                    (
                        f"product-{p['id']}",
                        1,
                        "product.registered.v1",
                        json.dumps(data),
                        meta,
                    )
                )
        conn.commit()
        written = PRODUCTS
        index = 0
        while written < count:
            with conn.cursor().copy(columns) as copy:
                for _ in range(CHUNK // 2):
                    product = products[index % PRODUCTS]
                    order_id = str(uuid.uuid4())
                    versions[product["id"]] += 1
                    copy.write_row(
                        (
                            f"order-{order_id}",
                            1,
                            "order.placed.v1",
                            _order_data(order_id, customer, product),
                            meta,
                        )
                    )
                    copy.write_row(
                        (
                            f"product-{product['id']}",
                            versions[product["id"]],
                            "product.stock_reserved.v1",
                            json.dumps(
                                {
                                    "product_id": product["id"],
                                    "order_id": order_id,
                                    "quantity": 1,
                                }
                            ),
                            meta,
                        )
                    )
                    index += 1
                    written += 2
                    if written >= count:
                        break
            conn.commit()
    return written


def read_orders(count: int, customer: int, other: int) -> list[str]:
    """Fill read_orders/read_customer_orders with `count` orders; return some ids.

    Half the orders belong to `customer` (the bench user), half to `other`.
    """
    now = datetime.datetime.now(datetime.UTC)
    ids = []
    line = json.dumps(
        [
            {
                "product_id": str(uuid.uuid4()),
                "sku": "SEED-1",
                "name": "Seed product",
                "quantity": 1,
                "unit_price_cents": 1999,
                "total_cents": 1999,
            }
        ]
    )
    address = json.dumps(common.ADDRESS)
    with psycopg.connect(f"{common.PG}/{common.READ_DB_NAME}") as conn:
        cur = conn.cursor()
        with (
            cur.copy(
                "COPY read_orders (id, customer_id, status, lines, shipping_address, "
                "total_cents, history, created_at, updated_at, position) FROM STDIN"
            ) as orders,
        ):
            for i in range(count):
                order_id = str(uuid.uuid4())
                at = now - datetime.timedelta(seconds=count - i)
                history = json.dumps(
                    [
                        {
                            "event": "placed",
                            "at": at.isoformat(),
                            "position": i + 1,
                            "details": {"total_cents": 1999},
                        }
                    ]
                )
                orders.write_row(
                    (
                        order_id,
                        customer if i % 2 else other,
                        "placed",
                        line,
                        address,
                        1999,
                        history,
                        at,
                        at,
                        i + 1,
                    )
                )
                if i % 2 and (i // 2) % max(1, count // 2000) == 0:
                    ids.append(order_id)
        with cur.copy(
            "COPY read_products (id, sku, name, price_cents, available, updated_at, "
            "position) FROM STDIN"
        ) as products:
            for i in range(PRODUCTS):
                products.write_row(
                    (str(uuid.uuid4()), f"SEED-{i:06d}", f"Seed {i}", 1999, 10, now, i)
                )
        conn.commit()
        conn.execute("ANALYZE read_orders")
        conn.execute("ANALYZE read_products")
        conn.commit()
    return ids


def reservations(product_id: str, count: int) -> None:
    """Append `count` StockReserved events to a registered product's stream."""
    meta = json.dumps({"recorded_by": "bench"})
    with psycopg.connect(f"{common.PG}/{common.DB_NAME}") as conn:
        (version,) = conn.execute(
            "SELECT max(version) FROM events WHERE stream_id = %s",
            [f"product-{product_id}"],
        ).fetchone() or (0,)
        with conn.cursor().copy(
            "COPY events (stream_id, version, type, data, metadata) FROM STDIN"
        ) as copy:
            for offset in range(1, count + 1):
                data = {
                    "product_id": product_id,
                    "order_id": str(uuid.uuid4()),
                    "quantity": 1,
                }
                copy.write_row(
                    (
                        f"product-{product_id}",
                        version + offset,
                        "product.stock_reserved.v1",
                        json.dumps(data),
                        meta,
                    )
                )
        conn.commit()
