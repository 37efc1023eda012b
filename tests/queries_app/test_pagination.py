"""Keyset cursor pagination: stable pages, page-size cap, fixed query counts."""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from . import factories as f

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]


def cursor_of(link: str | None) -> str | None:
    return None if link is None else parse_qs(urlparse(link).query)["cursor"][0]


def walk(client, url: str, params: dict) -> list[list[str]]:
    """Follow `next` links to the end; return the skus of each page."""
    pages, token = [], None
    while True:
        query = dict(params, **({"cursor": token} if token else {}))
        body = client.get(url, query).json()
        pages.append([row["sku"] for row in body["results"]])
        token = cursor_of(body["next"])
        if token is None:
            return pages


def test_pages_cover_every_row_once_even_when_the_ordering_value_ties(
    alice_api,
) -> None:
    for n in range(25):
        f.product(f"SKU-{n:02}", price_cents=500 if n % 2 else 100)
    for ordering in ("price_cents", "-price_cents", "name", "-name", "sku"):
        pages = walk(
            alice_api, "/api/products/", {"ordering": ordering, "page_size": 4}
        )
        rows = [sku for page in pages for sku in page]
        assert len(pages) == 7
        assert sorted(rows) == sorted(f"SKU-{n:02}" for n in range(25))
        full = alice_api.get(
            "/api/products/", {"ordering": ordering, "page_size": 100}
        ).json()["results"]
        assert rows == [row["sku"] for row in full]


def test_previous_links_lead_back_to_the_same_pages(alice_api) -> None:
    for n in range(10):
        f.product(f"SKU-{n}", price_cents=100)
    first = alice_api.get("/api/products/", {"page_size": 3, "ordering": "price_cents"})
    second = alice_api.get(
        "/api/products/",
        {
            "page_size": 3,
            "ordering": "price_cents",
            "cursor": cursor_of(first.json()["next"]),
        },
    )
    back = alice_api.get(
        "/api/products/",
        {
            "page_size": 3,
            "ordering": "price_cents",
            "cursor": cursor_of(second.json()["previous"]),
        },
    )
    assert back.json()["results"] == first.json()["results"]
    assert first.json()["previous"] is None


def test_the_page_size_is_capped_at_100(alice_api) -> None:
    for n in range(105):
        f.product(f"SKU-{n:03}")
    response = alice_api.get("/api/products/", {"page_size": 1000})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 100
    assert len(alice_api.get("/api/products/").json()["results"]) == 20


def test_orders_and_sales_paginate_too(alice, alice_api, staff_api) -> None:
    made = [str(f.order(alice, days=d).id) for d in range(5)]
    first = alice_api.get("/api/orders/", {"page_size": 2}).json()
    second = alice_api.get(
        "/api/orders/", {"page_size": 2, "cursor": cursor_of(first["next"])}
    ).json()
    got = [row["id"] for row in first["results"] + second["results"]]
    assert got == made[::-1][:4]
    for d in range(3):
        f.sales_day(date(2024, 5, 1) + timedelta(days=d))
    sales = staff_api.get("/api/stats/sales/", {"page_size": 2}).json()
    assert [row["day"] for row in sales["results"]] == ["2024-05-03", "2024-05-02"]
    assert sales["next"] is not None


def queries_for(client, url: str, params: dict | None = None) -> int:
    with f.count_queries() as contexts:
        response = client.get(url, params or {})
    assert response.status_code == 200, response.content
    return f.total(contexts)


def test_lists_and_details_cost_a_fixed_number_of_queries_at_1_and_50_rows(
    alice, alice_api, staff_api
) -> None:
    f.checkpoints(1, 1)
    one_product = f.product("ONE")
    one_order = f.order(alice)
    f.sales_day(date(2024, 1, 1))
    reads = [
        (alice_api, "/api/products/", {"page_size": 100}),
        (alice_api, "/api/orders/", {"page_size": 100}),
        (staff_api, "/api/orders/", {"page_size": 100}),
        (staff_api, "/api/stats/sales/", {"page_size": 100}),
    ]
    small = [queries_for(client, url, params) for client, url, params in reads]
    details = [
        queries_for(alice_api, f"/api/products/{one_product.id}/"),
        queries_for(alice_api, f"/api/orders/{one_order.id}/"),
    ]
    for n in range(49):
        f.product(f"SKU-{n}")
        f.order(alice, days=n + 1)
        f.sales_day(date(2024, 1, 2) + timedelta(days=n))
    large = [queries_for(client, url, params) for client, url, params in reads]
    assert large == small
    # Token lookup, checkpoint, rows: nothing per row.
    assert max(large) <= 3
    assert details == [3, 3]
