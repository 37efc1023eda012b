"""`search` on GET /api/products/: a part of the name or the SKU, any case."""

from __future__ import annotations

import pytest
from django.db import connections

from . import factories as f

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]


def skus(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["sku"] for row in response.json()["results"]]


def test_search_matches_a_part_of_the_name_or_the_sku_in_any_case(alice_api):
    f.product("MUG-001", name="Blue mug", available=3)
    f.product("TEA-002", name="Green tea", available=0)
    f.product("CUP-MUGGY", name="Cup", available=5)

    assert skus(alice_api.get("/api/products/?search=MUG")) == ["MUG-001", "CUP-MUGGY"]
    assert skus(alice_api.get("/api/products/?search=blue mu")) == ["MUG-001"]
    assert skus(alice_api.get("/api/products/?search=tea-00")) == ["TEA-002"]
    assert skus(alice_api.get("/api/products/?search=nothing")) == []
    # It combines with the other filters and the ordering.
    assert skus(
        alice_api.get("/api/products/?search=mug&min_available=4&ordering=sku")
    ) == ["CUP-MUGGY"]


def test_search_pages_with_the_keyset_cursor(alice_api):
    for i in range(7):
        f.product(f"PAGE-{i}", name=f"Paged item {i}")
    f.product("OTHER-1", name="Other")

    first = alice_api.get("/api/products/?search=paged&page_size=5")
    assert skus(first) == [f"PAGE-{i}" for i in range(5)]
    second = alice_api.get(first.json()["next"])
    assert skus(second) == ["PAGE-5", "PAGE-6"]
    assert second.json()["next"] is None


def test_search_is_refused_beyond_100_characters(alice_api):
    response = alice_api.get("/api/products/?search=" + "x" * 101)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "search" in response.json()["details"]


def test_the_trigram_indexes_can_answer_the_search_query():
    from queries_app.selectors import product_list

    f.product("IDX-1", name="Indexed thing")
    with connections["read"].cursor() as cursor:
        # Told to avoid scans, the planner shows the indexes match the query.
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = product_list(search="thing").explain()
    assert "read_products_search_name" in plan, plan
    assert "read_products_search_sku" in plan, plan
