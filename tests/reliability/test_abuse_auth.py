"""Password guessing: sign-ins are throttled by account and by client address.

Each path that checks a password (`/api/auth/token/`, `/login/`,
`/admin/login/`) locks a username, and an address, out after
LOGIN_FAILURE_LIMIT failures, answers 429 with Retry-After, and refuses a
locked-out sign-in before any password is hashed.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client, override_settings
from rest_framework.test import APIClient

from tests.conftest import make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

LIMIT = 3
throttled = override_settings(
    AXES_FAILURE_LIMIT=LIMIT, AXES_COOLOFF_TIME=timedelta(seconds=60)
)


def sign_in(username: str, password: str, address: str) -> Any:
    return APIClient().post(
        "/api/auth/token/",
        {"username": username, "password": password},
        format="json",
        REMOTE_ADDR=address,
    )


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every password hash computed (verify and encode)."""
    calls: list[str] = []
    verify, encode = MD5PasswordHasher.verify, MD5PasswordHasher.encode

    def counting_verify(self: Any, password: str, encoded: str) -> bool:
        calls.append("verify")
        return verify(self, password, encoded)

    def counting_encode(self: Any, password: str, salt: str) -> str:
        calls.append("encode")
        return encode(self, password, salt)

    monkeypatch.setattr(MD5PasswordHasher, "verify", counting_verify)
    monkeypatch.setattr(MD5PasswordHasher, "encode", counting_encode)
    return calls


@throttled
def test_many_wrong_passwords_get_429_and_then_even_the_right_one_is_refused(
    alice: Any, hashes: list[str]
):
    answers = [sign_in("alice", f"guess-{i}", "10.0.0.1") for i in range(LIMIT)]
    assert [a.status_code for a in answers] == [400] * (LIMIT - 1) + [429]
    assert answers[0].json()["code"] == "invalid_credentials"

    hashes.clear()
    locked = sign_in("alice", "alice-pass-123", "10.0.0.1")
    assert locked.status_code == 429
    assert locked.json()["code"] == "too_many_attempts"
    assert set(locked.json()) == {"code", "message", "details"}
    assert int(locked["Retry-After"]) == 60
    assert hashes == [], "a locked-out sign-in must not hash the password"


@throttled
def test_a_locked_account_is_refused_from_every_address_and_others_are_not(
    alice: Any, bob: Any
):
    for i in range(LIMIT):
        sign_in("alice", f"guess-{i}", "10.0.0.1")

    assert sign_in("alice", "alice-pass-123", "10.0.0.2").status_code == 429
    assert sign_in("bob", "bob-pass-123", "10.0.0.3").status_code == 200


@throttled
def test_an_address_guessing_many_accounts_is_locked_out_and_others_are_not(
    alice: Any, bob: Any
):
    for i in range(LIMIT):
        sign_in(f"nobody-{i}", "guess", "10.0.0.9")

    assert sign_in("bob", "bob-pass-123", "10.0.0.9").status_code == 429
    assert sign_in("bob", "bob-pass-123", "10.0.0.10").status_code == 200
    assert sign_in("alice", "alice-pass-123", "10.0.0.11").status_code == 200


@override_settings(AXES_FAILURE_LIMIT=LIMIT, AXES_COOLOFF_TIME=timedelta(seconds=2))
def test_a_lock_out_expires_after_the_cool_off(alice: Any):
    for i in range(LIMIT):
        sign_in("alice", f"guess-{i}", "10.0.0.1")
    assert sign_in("alice", "alice-pass-123", "10.0.0.1").status_code == 429

    time.sleep(2.5)

    answer = sign_in("alice", "alice-pass-123", "10.0.0.1")
    assert answer.status_code == 200, answer.content
    assert answer.json()["token"]


@throttled
@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_the_login_pages_answer_429_with_retry_after(
    staff: Any, hashes: list[str], path: str
):
    browser = Client(REMOTE_ADDR="10.0.0.5")
    for i in range(LIMIT - 1):
        answer = browser.post(path, {"username": "staff", "password": f"guess-{i}"})
        assert answer.status_code == 200  # the form again, with its error

    answer = browser.post(path, {"username": "staff", "password": "guess"})
    assert answer.status_code == 429
    assert int(answer["Retry-After"]) == 60
    assert b"Too many failed sign-ins" in answer.content

    hashes.clear()
    right = browser.post(path, {"username": "staff", "password": "staff-pass-123"})
    assert right.status_code == 429
    assert hashes == []
    assert "_auth_user_id" not in browser.session


@throttled
def test_a_lock_out_is_logged_as_one_structured_line(
    alice: Any, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.WARNING, logger="security.login"):
        for i in range(LIMIT):
            sign_in("alice", f"guess-{i}", "10.0.0.1")

    [record] = [r for r in caplog.records if r.name == "security.login"]
    assert record.event == "login_locked_out"  # type: ignore[attr-defined]
    assert record.username == "alice"  # type: ignore[attr-defined]
    assert record.client_ip == "10.0.0.1"  # type: ignore[attr-defined]
    assert record.failure_limit == LIMIT  # type: ignore[attr-defined]


@throttled
@override_settings(CLIENT_IP_PROXY_COUNT=1)
def test_behind_a_proxy_the_address_it_saw_counts_not_what_the_client_claims(
    bob: Any,
):
    def via_proxy(claimed: str, seen: str, password: str) -> Any:
        return APIClient().post(
            "/api/auth/token/",
            {"username": "bob", "password": password},
            format="json",
            REMOTE_ADDR="192.168.0.1",
            HTTP_X_FORWARDED_FOR=f"{claimed}, {seen}",
        )

    for i in range(LIMIT):
        # The guesser varies the part it controls; the proxy's part stays.
        via_proxy(f"1.2.3.{i}", "203.0.113.7", f"guess-{i}")
    make_user("carol")
    answer = APIClient().post(
        "/api/auth/token/",
        {"username": "carol", "password": "carol-pass-123"},
        format="json",
        REMOTE_ADDR="192.168.0.1",
        HTTP_X_FORWARDED_FOR="9.9.9.9, 203.0.113.7",
    )
    assert answer.status_code == 429
    other = APIClient().post(
        "/api/auth/token/",
        {"username": "carol", "password": "carol-pass-123"},
        format="json",
        REMOTE_ADDR="192.168.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.8",
    )
    assert other.status_code == 200
