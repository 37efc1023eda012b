"""Chromium (Debian's, never one Playwright downloads) for the browser tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from tests.support.processes import wait_until

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        message = (
            f"{CHROMIUM} is missing: run scripts/ensure_chromium.sh "
            "(apt-get install chromium)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread while it
    # is open (hence module scope: the loop ends with the module), so Django takes
    # every ORM call made by a test for one from async code. They are plain
    # synchronous calls from the test thread, not from a coroutine.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=shutil.which("chromium") or CHROMIUM,
                args=CHROMIUM_ARGS,
            )
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def off_the_loop(function: Callable[[], T]) -> T:
    """Call `function` in another thread: async_to_sync refuses Playwright's."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function).result(timeout=30)


def sign_in(browser: Any, web: Any, username: str, **context: Any) -> Any:
    """Open a new browser context and sign in through the login page."""
    page = browser.new_context(**context).new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{web.url}/")
    assert page.url.startswith(f"{web.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"{username}-pass-123")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{web.url}/")
    # Polled from here: page.wait_for_function polls by eval() in the page, which
    # the Content-Security-Policy (no 'unsafe-eval') refuses; evaluate() is exempt.
    wait_until(
        lambda: page.evaluate("window.Live && window.Live.state() === 'live'"),
        timeout=20,
    )
    return page
