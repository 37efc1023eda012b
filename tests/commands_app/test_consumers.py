"""WebSocket /ws/commands/ on the real server, channel layer and worker."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from api.tokens import issue_token
from tests.support.commands import ADDRESS, register_product

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


def ws_url(web: Any) -> str:
    return web.url.replace("http://", "ws://") + "/ws/commands/"


def token_of(user: Any) -> str:
    return issue_token(user)


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
    assert [p["command"]["status"] for p in mine] == [
        "running",
        "succeeded",
        "succeeded",
    ]
    running, succeeded, projected = mine
    assert running["command"]["projected"] is False
    assert succeeded["command"]["position"] is not None
    assert succeeded["command"]["finished_at"] is not None
    assert projected["command"]["projected"] is True
    assert projected["command"]["position"] == succeeded["command"]["position"]
    # seq grows by one per change: claim, final status, projected.
    assert [p["seq"] for p in mine] == [running["seq"] + i for i in range(3)]
    truth = requests.get(
        f"{web.url}{accepted['status_url']}",
        headers={"Authorization": f"Token {token_of(alice)}"},
        timeout=10,
    ).json()
    assert truth == projected["command"]


def session_cookie(web: Any, username: str) -> str:
    """Sign in through the login page, as a browser does; return the Cookie header."""
    session = requests.Session()
    page = session.get(f"{web.url}/login/", timeout=10)
    assert page.status_code == 200
    response = session.post(
        f"{web.url}/login/",
        data={
            "username": username,
            "password": f"{username}-pass-123",
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{web.url}/login/"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text
    return "; ".join(f"{k}={v}" for k, v in session.cookies.items())


def test_a_browser_session_with_an_allowed_origin_is_accepted(web, alice):
    cookie = session_cookie(web, "alice")
    with connect(
        ws_url(web),
        proxy=None,
        origin=Origin(web.url),
        additional_headers={"Cookie": cookie},
        open_timeout=5,
    ) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=5)) == {"type": "pong"}


def test_a_session_cookie_from_a_foreign_origin_is_refused(web, alice):
    cookie = session_cookie(web, "alice")
    with pytest.raises(InvalidStatus):
        connect(
            ws_url(web),
            proxy=None,
            origin=Origin("http://evil.example"),
            additional_headers={"Cookie": cookie},
            open_timeout=5,
        )


def test_a_session_cookie_without_origin_counts_for_nothing(web, alice):
    # Only a browser sends cookies by itself, and a browser always sends Origin.
    cookie = session_cookie(web, "alice")
    with pytest.raises(InvalidStatus):
        connect(
            ws_url(web),
            proxy=None,
            additional_headers={"Cookie": cookie},
            open_timeout=5,
        )


def test_an_unknown_token_is_refused(web):
    with pytest.raises(InvalidStatus):
        connect(
            ws_url(web),
            proxy=None,
            additional_headers={"Authorization": "Token not-a-token"},
            open_timeout=5,
        )


def silent(ws: Any, seconds: float = 1.0) -> list[dict[str, Any]]:
    """Return whatever arrives within `seconds` (expected: nothing)."""
    received = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            received.append(json.loads(ws.recv(timeout=left)))
        except TimeoutError:
            break
    return received


def test_staff_sockets_hear_every_staff_import_and_customers_hear_none(
    web, worker, staff, alice
):
    from tests.conftest import make_user

    other_staff = make_user("staff2", staff=True)
    staff_headers = {"Authorization": f"Token {token_of(staff)}"}
    alice_headers = {"Authorization": f"Token {token_of(alice)}"}
    with (
        connect(ws_url(web), proxy=None, additional_headers=staff_headers) as ws,
        connect(ws_url(web), proxy=None, additional_headers=alice_headers) as alice_ws,
    ):
        products = [
            {
                "sku": f"IMP-{i}",
                "name": f"Item {i}",
                "price_cents": 100,
                "initial_stock": 1,
            }
            for i in range(1200)
        ]
        accepted = post(web, other_staff, "import-products", {"products": products})
        pushes = pushes_until(
            ws,
            lambda got: any(
                p["type"] == "import.progress" and p["command"]["status"] == "succeeded"
                for p in got
            ),
            timeout=60,
        )
        assert silent(alice_ws) == []
    progress = [p for p in pushes if p["type"] == "import.progress"]
    assert {p["command"]["id"] for p in progress} == {accepted["id"]}
    assert {p["user_id"] for p in progress} == {other_staff.pk}
    # Only the issuer gets the command's own status pushes.
    assert not [p for p in pushes if p["type"] == "command.status"]
    percents = [p["command"]["progress"] for p in progress]
    assert percents == sorted(percents)
    assert len(set(percents)) >= 3  # 0 (running), chunks of 500, 100
    assert percents[-1] == 100
    assert progress[-1]["command"]["result"] == {"imported": 1200, "skipped": 0}
    seqs = [p["seq"] for p in progress]
    assert seqs == sorted(set(seqs))


def test_projection_lag_and_command_stats_reach_staff_only(
    web, worker, staff_api, staff, alice
):
    from commands_app import dashboard
    from projections.lag import report_lag
    from tests.support.processes import wait_until

    staff_headers = {"Authorization": f"Token {token_of(staff)}"}
    alice_headers = {"Authorization": f"Token {token_of(alice)}"}
    with (
        connect(ws_url(web), proxy=None, additional_headers=staff_headers) as ws,
        connect(ws_url(web), proxy=None, additional_headers=alice_headers) as alice_ws,
    ):
        register_product(staff_api, sku="LAG-1")
        # The worker's runner may just have reported (one report a second at most).
        wait_until(report_lag, timeout=3, interval=0.1)
        assert dashboard.push_dashboard()
        pushes = pushes_until(
            ws,
            lambda got: {"projection.lag", "command.stats"} <= {p["type"] for p in got},
        )
        assert silent(alice_ws) == []
    lag = next(p for p in pushes if p["type"] == "projection.lag")
    names = {p["name"] for p in lag["projections"]}
    assert "product_catalogue" in names
    assert all(
        p["lag_events"] >= 0 and p["lag_seconds"] >= 0 for p in lag["projections"]
    )
    stats = next(p for p in pushes if p["type"] == "command.stats")
    assert len(stats["minutes"]) == stats["window_minutes"] == 15
    assert sum(m["sent"] for m in stats["minutes"]) >= 1
    assert sum(m["succeeded"] for m in stats["minutes"]) >= 1


def test_a_staff_message_routed_to_a_customer_group_is_dropped(web, alice):
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from commands_app.push.layer import user_group

    headers = {"Authorization": f"Token {token_of(alice)}"}
    with connect(ws_url(web), proxy=None, additional_headers=headers) as ws:
        layer = get_channel_layer()
        async_to_sync(layer.group_send)(
            user_group(alice.pk),
            {"type": "projection.lag", "projections": [{"name": "x"}]},
        )
        ws.send(json.dumps({"type": "ping"}))
        # The pong proves the socket is alive and handled what came before it.
        assert [json.loads(ws.recv(timeout=5))] == [{"type": "pong"}]
        assert silent(ws) == []
