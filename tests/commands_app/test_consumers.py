"""WebSocket /ws/commands/ on the real server, channel layer and worker."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from rest_framework.authtoken.models import Token
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from tests.support.commands import ADDRESS, register_product

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def ws_url(web: Any) -> str:
    return web.url.replace("http://", "ws://") + "/ws/commands/"


def token_of(user: Any) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def pushes_until(ws: Any, done: Any, timeout: float = 15) -> list[dict[str, Any]]:
    received = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = json.loads(ws.recv(timeout=0.5))
        except TimeoutError:
            continue
        received.append(message)
        if done(received):
            return received
    raise AssertionError(f"pushes incomplete: {received}")


def post(web: Any, user: Any, name: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(
        f"{web.url}/api/commands/{name}/",
        json=body,
        headers={"Authorization": f"Token {token_of(user)}"},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    return response.json()


def test_anonymous_sockets_are_refused_before_the_handshake(web):
    with pytest.raises(InvalidStatus):
        connect(ws_url(web), proxy=None, open_timeout=5)


def test_a_foreign_origin_is_refused_even_with_a_valid_token(web, alice):
    with pytest.raises(InvalidStatus):
        connect(
            ws_url(web),
            proxy=None,
            origin=Origin("http://evil.example"),
            additional_headers={"Authorization": f"Token {token_of(alice)}"},
            open_timeout=5,
        )


def test_a_command_pushes_each_status_change_and_projected_to_its_issuer_only(
    web, worker, staff_api, alice, bob
):
    product_id = register_product(staff_api, stock=5)
    alice_headers = {"Authorization": f"Token {token_of(alice)}"}
    bob_headers = {"Authorization": f"Token {token_of(bob)}"}
    with (
        connect(ws_url(web), proxy=None, additional_headers=alice_headers) as ws,
        connect(ws_url(web), proxy=None, additional_headers=bob_headers) as bob_ws,
    ):
        accepted = post(
            web,
            alice,
            "place-order",
            {
                "lines": [{"product_id": product_id, "quantity": 1}],
                "shipping_address": ADDRESS,
            },
        )
        pushes = pushes_until(
            ws,
            lambda got: any(
                p["command"]["id"] == accepted["id"] and p["command"]["projected"]
                for p in got
            ),
        )
        with pytest.raises(TimeoutError):
            bob_ws.recv(timeout=1)
    mine = [p for p in pushes if p["command"]["id"] == accepted["id"]]
    assert all(p["type"] == "command.status" for p in mine)
    statuses = [p["command"]["status"] for p in mine]
    assert statuses[0] == "running"
    assert "succeeded" in statuses
    seqs = [p["seq"] for p in mine]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
