"""Helpers to drive the command API and wait for outcomes."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from tests.support.processes import wait_until

ADDRESS = {
    "name": "Alice Martin",
    "line1": "1 rue de Rivoli",
    "city": "Paris",
    "postal_code": "75001",
    "country": "FR",
}
GOOD_CARD = {
    "number": "4242424242424242",
    "exp_month": 12,
    "exp_year": 2035,
    "cvc": "123",
}
DECLINED_CARD = {**GOOD_CARD, "number": "4000000000000002"}


def submit(client: APIClient, name: str, body: dict[str, Any], **headers: str) -> Any:
    return client.post(f"/api/commands/{name}/", body, format="json", headers=headers)


def final_status(
    client: APIClient, command_id: str, timeout: float = 20
) -> dict[str, Any]:
    """Poll the status endpoint until the command is final; return its body."""

    def done() -> dict[str, Any] | None:
        body = client.get(f"/api/commands/{command_id}/").json()
        return body if body["status"] in {"succeeded", "rejected", "failed"} else None

    return wait_until(done, timeout=timeout, interval=0.05)


def run(
    client: APIClient, name: str, body: dict[str, Any], **headers: str
) -> dict[str, Any]:
    """Submit a command, expect 202, and wait for its final status."""
    response = submit(client, name, body, **headers)
    assert response.status_code == 202, response.content
    return final_status(client, response.json()["id"])


def register_product(
    staff_api: APIClient, sku: str = "MUG-1", stock: int = 10, price: int = 1200
) -> str:
    status = run(
        staff_api,
        "register-product",
        {
            "sku": sku,
            "name": f"Product {sku}",
            "price_cents": price,
            "initial_stock": stock,
        },
    )
    assert status["status"] == "succeeded", status
    return str(status["aggregate_id"])


def place_order(
    client: APIClient, product_id: str, quantity: int = 1
) -> dict[str, Any]:
    return run(
        client,
        "place-order",
        {
            "lines": [{"product_id": product_id, "quantity": quantity}],
            "shipping_address": ADDRESS,
        },
    )
