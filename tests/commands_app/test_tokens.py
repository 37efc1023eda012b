"""API tokens: stored as digests, expiring, revoked on logout and password change."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import user_logged_out
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from commands_app.tokens import issue_token, tokens_revoked
from config.ws_auth import _user_for_token

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]


def with_token(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def works(token: str) -> bool:
    return with_token(token).get("/api/products/").status_code == 200


@pytest.fixture
def revocations() -> Any:
    sent: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        sent.append(kwargs)

    tokens_revoked.connect(receiver)
    yield sent
    tokens_revoked.disconnect(receiver)


def test_signing_in_gives_a_token_that_the_database_keeps_only_as_a_digest(alice):
    answer = APIClient().post(
        "/api/auth/token/",
        {"username": "alice", "password": "alice-pass-123"},
        format="json",
    )
    assert answer.status_code == 200
    token = answer.json()["token"]
    assert works(token)
    with connection.cursor() as cursor:
        cursor.execute("SELECT digest, token_key FROM knox_authtoken")
        [(digest, key)] = cursor.fetchall()
    assert token not in digest
    assert key != token


def test_a_token_expires_after_its_time_to_live(alice):
    token = issue_token(alice)
    AuthToken.objects.filter(user=alice).update(
        expiry=timezone.now() - timedelta(seconds=1)
    )
    answer = with_token(token).get("/api/products/")
    assert answer.status_code == 401
    assert answer.json()["code"] == "authentication_failed"


@override_settings(REST_KNOX={"TOKEN_TTL": timedelta(hours=3)})
def test_the_time_to_live_is_a_setting(alice):
    issue_token(alice)
    expiry = AuthToken.objects.get(user=alice).expiry
    assert expiry is not None
    assert abs(expiry - (timezone.now() + timedelta(hours=3))) < timedelta(minutes=1)


def test_logout_revokes_this_token_only(alice, revocations):
    phone, laptop = issue_token(alice), issue_token(alice)
    logged_out: list[Any] = []

    def on_logged_out(sender: Any, **kwargs: Any) -> None:
        logged_out.append(kwargs["user"])

    user_logged_out.connect(on_logged_out)

    assert with_token(phone).post("/api/auth/logout/").status_code == 204

    assert not works(phone)
    assert works(laptop)
    assert revocations[0]["user"] == alice
    assert revocations[0]["everywhere"] is False
    user_logged_out.disconnect(on_logged_out)
    assert logged_out == [alice]


def test_logout_all_revokes_every_token_of_the_user_only(alice, bob, revocations):
    phone, laptop, bobs = issue_token(alice), issue_token(alice), issue_token(bob)

    assert with_token(phone).post("/api/auth/logout-all/").status_code == 204

    assert not works(phone)
    assert not works(laptop)
    assert works(bobs)
    assert revocations[0]["everywhere"] is True


def test_logging_out_needs_a_token(alice):
    answer = APIClient().post("/api/auth/logout/")
    assert answer.status_code == 401
    assert set(answer.json()) == {"code", "message", "details"}


def test_a_password_change_revokes_every_token(alice, revocations):
    token = issue_token(alice)
    alice.set_password("a-new-password-456")
    alice.save()
    assert not works(token)
    assert revocations[0]["user"] == alice
    assert revocations[0]["request"] is None


def test_a_password_changed_in_the_admin_revokes_every_token(alice):
    token = issue_token(alice)
    form = AdminPasswordChangeForm(
        alice, {"password1": "n3w-pass-789!", "password2": "n3w-pass-789!"}
    )
    assert form.is_valid(), form.errors
    form.save()
    assert not works(token)


def test_saving_a_user_without_a_new_password_keeps_its_tokens(alice):
    token = issue_token(alice)
    alice.last_login = timezone.now()
    alice.save(update_fields=["last_login"])
    alice.first_name = "Alice"
    alice.save()
    assert works(token)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_the_websocket_handshake_accepts_live_tokens_only(alice):
    token = issue_token(alice)
    assert async_to_sync(_user_for_token)(token) == alice
    assert not async_to_sync(_user_for_token)("not-a-token").is_authenticated
    AuthToken.objects.filter(user=alice).delete()
    assert not async_to_sync(_user_for_token)(token).is_authenticated


def test_the_admin_shows_who_holds_a_token_but_no_secret(alice):
    from django.test import Client

    from tests.conftest import make_user

    admin = make_user("root", staff=True)
    admin.is_superuser = True
    admin.save()
    token = issue_token(alice)
    row = AuthToken.objects.get(user=alice)
    browser = Client()
    browser.force_login(admin)

    listing = browser.get("/admin/knox/authtoken/")
    detail = browser.get(f"/admin/knox/authtoken/{row.pk}/change/")

    assert listing.status_code == 200
    assert detail.status_code == 200
    # The digest (a one-way hash) names the row in links; no part of the token shows.
    for page in (listing.content.decode(), detail.content.decode()):
        assert token not in page
        assert row.token_key not in page
    assert "alice" in listing.content.decode()


def test_a_token_deleted_in_the_admin_is_revoked_with_the_signal(alice, revocations):
    from django.contrib import admin
    from django.test import RequestFactory

    token = issue_token(alice)
    model_admin = admin.site._registry[AuthToken]
    request = RequestFactory().post("/admin/knox/authtoken/")
    model_admin.delete_queryset(request, AuthToken.objects.filter(user=alice))
    assert not works(token)
    assert revocations[0]["user"] == alice
    assert revocations[0]["request"] is request
