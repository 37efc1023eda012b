"""Read-your-writes with the real worker: a read at a command's position shows it."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from projections.registry import projector_names
from tests.support.commands import place_order, register_product, run
from tests.support.processes import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.skipif(
        not {"product_catalogue", "order_summary", "daily_sales"}
        <= set(projector_names()),
        reason="the projectors behind the read API are not registered yet",
    ),
]


def read_at(client: APIClient, url: str, position: int) -> Any:
    """Read with `min_position`, retrying while the read model says it is behind.

    A 503 is allowed (the wait is bounded); a 200 must already show the write.
    """

    def attempt() -> Any:
        response = client.get(url, {"min_position": position})
        assert response.status_code in (200, 503), response.content
        if response.status_code == 503:
            assert response.json()["code"] == "read_model_behind"
            return None
        return response

    return wait_until(attempt, timeout=30, interval=0.05)


def test_a_read_at_a_commands_position_always_shows_its_effect(
    worker, staff_api, alice_api, alice
) -> None:
    product_id = register_product(staff_api, sku="RYW-1", stock=5, price=700)
    reserved = 0
    for placed, quantity in enumerate((1, 2), start=1):
        status = place_order(alice_api, product_id, quantity=quantity)
        assert status["status"] == "succeeded", status
        position = status["position"]
        order_id = status["aggregate_id"]

        order = read_at(alice_api, f"/api/orders/{order_id}/", position).json()
        assert order["status"] == "placed"
        assert order["total_cents"] == 700 * quantity

        mine = read_at(alice_api, "/api/orders/", position).json()["results"]
        assert order_id in {row["id"] for row in mine}

        reserved += quantity
        product = read_at(alice_api, f"/api/products/{product_id}/", position).json()
        assert product["available"] == 5 - reserved

        days = read_at(staff_api, "/api/stats/sales/", position).json()["results"]
        assert sum(day["orders"] for day in days) == placed


def test_a_product_is_listed_at_the_position_of_its_registration(
    worker, staff_api
) -> None:
    status = run(
        staff_api,
        "register-product",
        {"sku": "RYW-2", "name": "Teapot", "price_cents": 3000, "initial_stock": 4},
    )
    assert status["status"] == "succeeded", status
    response = read_at(staff_api, "/api/products/", status["position"])
    assert "RYW-2" in {row["sku"] for row in response.json()["results"]}
    # The reported position is itself a token the read model has applied.
    token = response["X-Read-Position"]
    again = staff_api.get("/api/products/", {"min_position": token})
    assert again.status_code == 200, again.content
