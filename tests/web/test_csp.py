"""The browser app runs under its Content-Security-Policy without a violation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.processes import wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


@pytest.mark.parametrize("who", ["alice", "staff"])
def test_the_pages_and_the_websocket_work_under_the_policy(
    web, worker, alice, staff, browser, who
):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    response = page.goto(f"{web.url}/login/")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.get_by_label("Username").fill(who)
    page.get_by_label("Password").fill(f"{who}-pass-123")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{web.url}/")
    # The WebSocket (same origin: connect-src 'self') comes up.
    wait_until(
        lambda: page.evaluate("window.Live && window.Live.state() === 'live'"),
        timeout=20,
    )
    config: Any = page.evaluate(
        "Object.assign({}, document.getElementById('app-config').dataset)"
    )
    assert config["isStaff"] == ("true" if who == "staff" else "false")
    page.wait_for_timeout(500)
    assert violations == []
    context.close()
