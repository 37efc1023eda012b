"""Idempotency against the real web server: concurrent duplicates make one command."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from api.tokens import issue_token
from commands_app.models import CommandRecord

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

BODY: dict[str, Any] = {
    "sku": "IDEM-1",
    "name": "Mug",
    "price_cents": 1200,
    "initial_stock": 3,
}


def post(web, user, body, key: str) -> requests.Response:
    token = issue_token(user)
    return requests.post(
        f"{web.url}/api/commands/register-product/",
        json=body,
        headers={"Authorization": f"Token {token}", "Idempotency-Key": key},
        timeout=20,
    )


def test_twenty_concurrent_duplicates_with_one_key_make_one_command(web, staff):
    token = issue_token(staff)
    start = threading.Barrier(20)

    def send(_: int) -> requests.Response:
        with requests.Session() as session:  # one connection per client
            start.wait()
            return session.post(
                f"{web.url}/api/commands/register-product/",
                json=BODY,
                headers={"Authorization": f"Token {token}", "Idempotency-Key": "k-1"},
                timeout=20,
            )

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(send, range(20)))
    assert [r.status_code for r in responses] == [202] * 20, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert len({r.headers["Location"] for r in responses}) == 1
    assert CommandRecord.objects.count() == 1


def test_the_same_key_with_another_body_is_refused_with_422(web, staff):
    first = post(web, staff, BODY, "k-2")
    assert first.status_code == 202
    again = post(web, staff, BODY, "k-2")
    assert again.json()["id"] == first.json()["id"]
    other = post(web, staff, {**BODY, "initial_stock": 4}, "k-2")
    assert other.status_code == 422
    body = other.json()
    assert body["code"] == "idempotency_key_reused"
    assert set(body) == {"code", "message", "details"}
    assert CommandRecord.objects.count() == 1


def test_an_idempotency_key_belongs_to_one_user(web, staff):
    from tests.conftest import make_user

    other_staff = make_user("staff2", staff=True)
    mine = post(web, staff, BODY, "k-3").json()["id"]
    theirs = post(web, other_staff, BODY, "k-3").json()["id"]
    assert mine != theirs
    assert CommandRecord.objects.count() == 2


def test_an_oversized_body_on_the_real_server_is_a_413_error_body(web, staff):
    big = {"products": [BODY] * 150_000}
    response = post(web, staff, big, "k-4")
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert CommandRecord.objects.count() == 0
