"""The catalogue's stock reaches subscribed sockets (the shop's) once projected."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.support.commands import register_product, run

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


def ws_url(web: Any) -> str:
    return web.url.replace("http://", "ws://") + "/ws/commands/"


def subscribed(ws: Any) -> Any:
    ws.send(json.dumps({"type": "catalogue.subscribe"}))
    ws.send(json.dumps({"type": "ping"}))
    # Messages are handled in order: the pong says the group was joined.
    assert json.loads(ws.recv(timeout=5)) == {"type": "pong"}
    return ws


def headers(user: Any) -> dict[str, str]:
    from commands_app.tokens import issue_token

    return {"Authorization": f"Token {issue_token(user)}"}


def stock_pushes(ws: Any, product_id: str, available: int, timeout: float = 20):
    received = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = json.loads(ws.recv(timeout=0.5))
        except TimeoutError:
            continue
        received.append(message)
        if message["type"] == "catalogue.stock" and any(
            p["id"] == product_id and p["available"] == available
            for p in message["products"]
        ):
            return received
    raise AssertionError(f"no stock push for {product_id}: {received}")


def test_a_restock_reaches_shop_sockets_with_the_projected_stock(
    web, worker, staff_api, alice, bob
):
    product_id = register_product(staff_api, sku="LIVE-1", stock=5)
    with (
        connect(ws_url(web), proxy=None, additional_headers=headers(alice)) as shop,
        connect(ws_url(web), proxy=None, additional_headers=headers(bob)) as api_only,
    ):
        subscribed(shop)
        status = run(
            staff_api, "restock-product", {"product_id": product_id, "quantity": 7}
        )
        assert status["status"] == "succeeded", status

        received = stock_pushes(shop, product_id, 12)

        push = received[-1]
        # Coalesced: the product once per message.
        (entry,) = [p for p in push["products"] if p["id"] == product_id]
        assert entry["position"] == status["position"]
        # Pushed once the catalogue committed it: the read API agrees.
        product = staff_api.get(f"/api/products/{product_id}/").json()
        assert product["available"] == 12
        # A socket that did not ask for the catalogue hears none of it.
        with pytest.raises(TimeoutError):
            api_only.recv(timeout=1)
