"""WebSocket abuse: per-user socket cap, frame size, logout and lost staff rights.

Real sockets on the real server and channel layer (the session's web server).
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import pytest
import requests
from django.conf import settings
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from commands_app.push.broadcast import push_projection_lag
from commands_app.push.layer import send_to_user
from tests.commands_app.test_consumers import session_cookie, token_of, ws_url

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


def open_socket(web: Any, user: Any) -> ClientConnection:
    return connect(
        ws_url(web),
        proxy=None,
        additional_headers={"Authorization": f"Token {token_of(user)}"},
        open_timeout=10,
    )


def close_code(ws: ClientConnection, timeout: float = 10) -> int:
    """Read until the server closes the socket; return its close code."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                ws.recv(timeout=0.5)
    except ConnectionClosed as closed:
        received = closed.rcvd
    else:
        raise AssertionError("the server kept the socket open")
    assert received is not None, "closed without a close frame"
    return received.code


def is_open(ws: ClientConnection) -> bool:
    ws.send(json.dumps({"type": "ping"}))
    return json.loads(ws.recv(timeout=5)) == {"type": "pong"}


def test_a_user_past_the_socket_cap_is_closed_with_4429(web, alice, bob):
    cap = settings.WS_MAX_CONNECTIONS_PER_USER
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(open_socket(web, alice)) for _ in range(cap)]
        assert all(is_open(ws) for ws in sockets)
        extra = stack.enter_context(open_socket(web, alice))
        assert close_code(extra) == 4429
        # Another user is not counted against alice.
        with open_socket(web, bob) as other:
            assert is_open(other)
        # A closed socket gives its slot back.
        sockets[0].close()
        time.sleep(0.5)
        again = stack.enter_context(open_socket(web, alice))
        assert is_open(again)


def test_a_frame_above_the_limit_closes_the_socket_with_1009(web, alice):
    with open_socket(web, alice) as ws:
        assert is_open(ws)
        ws.send("x" * (settings.WS_MAX_FRAME_BYTES + 1))
        assert close_code(ws) == 1009
    # Multi-byte characters count as bytes, not characters.
    with open_socket(web, alice) as ws:
        ws.send("é" * (settings.WS_MAX_FRAME_BYTES // 2 + 1))
        assert close_code(ws) == 1009


def test_a_logout_closes_every_socket_of_the_user_with_4401(web, alice, bob):
    cookie = session_cookie(web, "alice")
    with (
        connect(
            ws_url(web),
            proxy=None,
            origin=Origin(web.url),
            additional_headers={"Cookie": cookie},
            open_timeout=10,
        ) as browser,
        open_socket(web, alice) as api,
        open_socket(web, bob) as other,
    ):
        assert is_open(browser)
        assert is_open(api)
        assert is_open(other)
        csrf = dict(part.split("=", 1) for part in cookie.split("; "))["csrftoken"]
        response = requests.post(
            f"{web.url}/logout/",
            headers={
                "Cookie": cookie,
                "X-CSRFToken": csrf,
                "Referer": f"{web.url}/",
            },
            allow_redirects=False,
            timeout=10,
        )
        assert response.status_code == 302, response.text
        assert close_code(browser) == 4401
        assert close_code(api) == 4401
        assert is_open(other)


def staff_messages_until_marker(ws: ClientConnection) -> list[dict[str, Any]]:
    """Read until the marker command.status; return the staff messages before it."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        message = json.loads(ws.recv(timeout=10))
        if message["type"] == "command.status" and message["seq"] == -1:
            return seen
        if message["type"] == "projection.lag":
            seen.append(message)
    raise AssertionError("marker never arrived")


def marker(user: Any) -> None:
    assert send_to_user(user.pk, {"type": "command.status", "seq": -1, "command": {}})


def lag(name: str) -> None:
    assert push_projection_lag([{"name": name, "lag": 0}])


def test_a_socket_stops_receiving_staff_pushes_once_staff_rights_are_removed(
    web, staff
):
    with open_socket(web, staff) as ws:
        assert is_open(ws)
        lag("before")
        marker(staff)
        assert [
            m["projections"][0]["name"] for m in staff_messages_until_marker(ws)
        ] == ["before"]
        staff.is_staff = False
        staff.save()
        lag("after")
        marker(staff)
        assert staff_messages_until_marker(ws) == []
        assert is_open(ws)


def test_a_staff_push_reads_staff_rights_again_when_no_signal_said_so(web, staff):
    from django.contrib.auth.models import User

    with open_socket(web, staff) as ws:
        assert is_open(ws)
        # A queryset update sends no signal.
        User.objects.filter(pk=staff.pk).update(is_staff=False)
        time.sleep(settings.WS_STAFF_RECHECK_SECONDS + 0.5)
        lag("after")
        marker(staff)
        assert staff_messages_until_marker(ws) == []


def test_a_deactivated_user_s_sockets_are_closed_with_4401(web, alice):
    with open_socket(web, alice) as ws:
        assert is_open(ws)
        alice.is_active = False
        alice.save()
        assert close_code(ws) == 4401


def test_a_password_change_closes_every_socket_of_the_user_with_4401(web, alice, bob):
    with open_socket(web, alice) as ws, open_socket(web, bob) as other:
        assert is_open(ws)
        alice.set_password("a-new-password-456")
        alice.save()
        assert close_code(ws) == 4401
        assert is_open(other)


def test_a_logout_everywhere_with_a_token_closes_the_user_s_sockets(web, alice):
    token = token_of(alice)
    with open_socket(web, alice) as ws:
        assert is_open(ws)
        response = requests.post(
            f"{web.url}/api/auth/logout-all/",
            headers={"Authorization": f"Token {token}"},
            timeout=10,
        )
        assert response.status_code in (200, 204), response.text
        assert close_code(ws) == 4401
