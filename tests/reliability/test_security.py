"""Attackers: an authorization matrix, CSRF, rate limits, admin permissions, deploy."""

from __future__ import annotations

import base64
import secrets
import subprocess
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from commands_app.models import CommandRecord
from projections.models import Checkpoint
from tests.conftest import client_for, make_user
from tests.queries_app import factories
from tests.support import processes
from tests.support.commands import ADDRESS

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]

ORDER_BODY = {
    "lines": [{"product_id": "00000000-0000-4000-8000-000000000001", "quantity": 1}],
    "shipping_address": ADDRESS,
}


@pytest.fixture
def world(alice: Any, bob: Any, staff: Any) -> dict[str, Any]:
    """One product, one order and one command of alice's."""
    product = factories.product()
    order = factories.order(alice)
    command = CommandRecord.objects.create(
        type="place-order", user=alice, payload={}, request_hash="-"
    )
    return {"product": product.id, "order": order.id, "command": command.id}


# (url, anonymous, alice = owner, bob = another customer, staff)
MATRIX = [
    ("/api/products/", 401, 200, 200, 200),
    ("/api/products/{product}/", 401, 200, 200, 200),
    ("/api/orders/", 401, 200, 200, 200),
    ("/api/orders/{order}/", 401, 200, 404, 200),
    ("/api/stats/sales/", 401, 403, 403, 200),
    ("/api/commands/{command}/", 401, 200, 404, 200),
]


@pytest.mark.parametrize(("url", "anon", "owner", "other", "staff_"), MATRIX)
def test_every_read_answers_each_role_as_the_matrix_says(
    world, alice, bob, staff, url, anon, owner, other, staff_
):
    path = url.format(**world)
    roles = {
        "anonymous": (anon, APIClient()),
        "owner": (owner, client_for(alice)),
        "other customer": (other, client_for(bob)),
        "staff": (staff_, client_for(staff)),
    }
    for who, (expected, client) in roles.items():
        response = client.get(path)
        assert response.status_code == expected, (who, path, response.content)
        if expected >= 400:
            assert set(response.json()) == {"code", "message", "details"}


def test_another_customer_never_sees_alices_orders_in_a_list(world, bob):
    body = client_for(bob).get("/api/orders/").json()
    assert str(world["order"]) not in str(body)


def test_a_session_post_without_a_csrf_token_is_refused_and_stores_nothing(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    refused = browser.post(
        "/api/commands/place-order/", ORDER_BODY, content_type="application/json"
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert "CSRF" in refused.json()["message"]
    assert CommandRecord.objects.count() == 0
    browser.get("/admin/login/")
    token = browser.cookies["csrftoken"].value
    accepted = browser.post(
        "/api/commands/place-order/",
        ORDER_BODY,
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert accepted.status_code == 202, accepted.content
    assert CommandRecord.objects.count() == 1


def test_a_token_post_needs_no_csrf_token(alice):
    response = client_for(alice).post(
        "/api/commands/place-order/", ORDER_BODY, format="json"
    )
    assert response.status_code == 202


def test_command_submission_is_rate_limited_per_user_with_retry_after(
    alice, bob, settings
):
    settings.COMMAND_THROTTLE_RATE = "3/min"
    for user in (alice, bob):
        cache.delete(f"throttle_commands_{user.pk}")
    api = client_for(alice)
    answers = [
        api.post("/api/commands/place-order/", ORDER_BODY, format="json")
        for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    assert answers[-1].json()["code"] == "throttled"
    assert 0 < int(answers[-1]["Retry-After"]) <= 60
    assert CommandRecord.objects.count() == 3
    # Another user has a budget of their own.
    other = client_for(bob).post(
        "/api/commands/place-order/", ORDER_BODY, format="json"
    )
    assert other.status_code == 202
    for user in (alice, bob):
        cache.delete(f"throttle_commands_{user.pk}")


def admin_client(user: Any) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def test_admin_actions_need_their_permissions(alice):
    clerk = make_user("clerk", staff=True)
    clerk.user_permissions.add(
        Permission.objects.get(codename="view_commandrecord"),
        Permission.objects.get(codename="view_checkpoint"),
    )
    failed = CommandRecord.objects.create(
        type="place-order", user=alice, payload={}, request_hash="-", status="failed"
    )
    Checkpoint.objects.create(name="order_summary")
    browser = admin_client(clerk)
    listing = browser.get("/admin/commands_app/commandrecord/")
    assert listing.status_code == 200
    assert b"redrive" not in listing.content
    browser.post(
        "/admin/commands_app/commandrecord/",
        {"action": "redrive", "_selected_action": [str(failed.pk)]},
    )
    assert CommandRecord.objects.get(pk=failed.pk).status == "failed"
    checkpoints = browser.get("/admin/projections/checkpoint/")
    assert checkpoints.status_code == 200
    assert b'value="rebuild"' not in checkpoints.content
    assert b'value="replay"' not in checkpoints.content
    # A customer is not let into the admin at all.
    assert (
        admin_client(alice).get("/admin/commands_app/commandrecord/").status_code == 302
    )


HOSTILE_HEADERS = [
    {"Authorization": "Token " + "A" * 8000},
    {"Authorization": "Token ' OR '1'='1"},
    {"Authorization": "Bearer \x00"},
    {"Authorization": "Token"},
    {"Accept": "text/html"},
    {"X-Forwarded-For": "' OR 1=1 --, 999.999.999.999"},
    {"X-Forwarded-Proto": "https" * 500},
    {"Range": "bytes=0-999999999999999999999"},
    {"If-None-Match": "*" * 5000},
]


@pytest.mark.parametrize("headers", HOSTILE_HEADERS)
@pytest.mark.parametrize("url", ["/api/products/", "/api/orders/", "/api/stats/sales/"])
def test_abusive_headers_on_reads_answer_4xx_or_200_never_5xx(staff, url, headers):
    client = client_for(staff)
    response = client.get(url, headers=headers)
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert set(response.json()) == {"code", "message", "details"}


@pytest.mark.parametrize(
    "ident",
    [
        "' OR '1'='1",
        "1;DROP TABLE read_orders",
        "%00",
        "..%2F..%2Fetc%2Fpasswd",
        "x" * 3000,
        "00000000-0000-0000-0000-000000000000",
        "😀",
        "%C0%AE",
    ],
)
@pytest.mark.parametrize("kind", ["products", "orders"])
def test_hostile_ids_in_read_paths_are_structured_404s(staff, kind, ident):
    response = client_for(staff).get(f"/api/{kind}/{ident}/")
    assert response.status_code == 404, response.content
    assert response.json()["code"].endswith("not_found")


def test_check_deploy_is_clean_with_production_settings():
    env = processes.test_env(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        # Production refuses to start without its own master key of personal data.
        PII_MASTER_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    )
    out = subprocess.run(
        [
            str(processes.BIN / "python"),
            "manage.py",
            "check",
            "--deploy",
            "--fail-level",
            "WARNING",
        ],
        cwd=processes.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout, out.stdout + out.stderr


def test_unknown_fields_cannot_assign_the_owner_or_status(alice):
    body = {**ORDER_BODY, "customer_id": 1, "status": "shipped", "user": 1}
    response = client_for(alice).post("/api/commands/place-order/", body, format="json")
    assert response.status_code == 400
    assert set(response.json()["details"]) >= {"customer_id", "status", "user"}
    assert CommandRecord.objects.count() == 0
