"""GET /api/products/ and /api/products/<id>/ over the catalogue read table."""

from __future__ import annotations

import uuid

import pytest

from . import factories as f

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]


def test_anonymous_users_get_401_on_every_product_read(client) -> None:
    item = f.product()
    for url in ("/api/products/", f"/api/products/{item.id}/"):
        response = client.get(url)
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


def test_any_signed_in_user_lists_products_with_the_public_fields(alice_api) -> None:
    f.product("MUG-1", name="Mug", price_cents=1200, available=7)
    response = alice_api.get("/api/products/")
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert set(row) == {"id", "sku", "name", "price_cents", "available"}
    assert (row["sku"], row["name"], row["price_cents"], row["available"]) == (
        "MUG-1",
        "Mug",
        1200,
        7,
    )


def test_a_product_is_shown_by_id(bob_api) -> None:
    item = f.product("TEA-1")
    response = bob_api.get(f"/api/products/{item.id}/")
    assert response.status_code == 200
    assert response.json()["sku"] == "TEA-1"


@pytest.mark.parametrize("product_id", [str(uuid.uuid4()), "not-a-uuid", "1' OR '1"])
def test_an_unknown_or_malformed_product_id_is_a_structured_404(
    alice_api, product_id
) -> None:
    response = alice_api.get(f"/api/products/{product_id}/")
    assert response.status_code == 404
    assert response.json()["code"] == "product_not_found"


def test_products_filter_by_sku_name_and_available_stock(alice_api) -> None:
    f.product("MUG-1", name="Blue mug", available=0)
    f.product("MUG-2", name="Red MUG", available=5)
    f.product("TEA-1", name="Green tea", available=50)

    def skus(**params) -> list[str]:
        response = alice_api.get("/api/products/", params)
        assert response.status_code == 200, response.content
        return sorted(row["sku"] for row in response.json()["results"])

    assert skus(sku="MUG-2") == ["MUG-2"]
    assert skus(q="mug") == ["MUG-1", "MUG-2"]
    assert skus(q="%") == []
    assert skus(min_available=5) == ["MUG-2", "TEA-1"]
    assert skus(q="mug", min_available=1) == ["MUG-2"]


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("name", ["B", "C", "A"]),
        ("-name", ["A", "C", "B"]),
        ("price_cents", ["C", "A", "B"]),
        ("-price_cents", ["B", "A", "C"]),
        ("sku", ["A", "B", "C"]),
    ],
)
def test_products_are_ordered_from_the_fixed_list(
    alice_api, ordering, expected
) -> None:
    f.product("A", name="zebra", price_cents=200)
    f.product("B", name="apple", price_cents=300)
    f.product("C", name="mango", price_cents=100)
    response = alice_api.get("/api/products/", {"ordering": ordering})
    assert [row["sku"] for row in response.json()["results"]] == expected
