"""Reads are throttled per user, as commands are: 429, Retry-After, structured body."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache

from commands_app.models import CommandRecord
from tests.conftest import client_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]


@pytest.fixture
def fresh_windows(alice: Any, bob: Any) -> Any:
    keys = [f"throttle_reads_{user.pk}" for user in (alice, bob)]
    cache.delete_many(keys)
    yield
    cache.delete_many(keys)


def test_reads_past_the_rate_get_429_with_retry_after(
    alice, bob, fresh_windows, settings
):
    settings.READ_THROTTLE_RATE = "3/hour"
    api = client_for(alice)
    answers = [api.get("/api/products/") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1].json()
    assert refused["code"] == "throttled"
    assert set(refused) == {"code", "message", "details"}
    assert 3500 < int(answers[-1]["Retry-After"]) <= 3600
    # Another user's reads are counted on their own.
    assert client_for(bob).get("/api/orders/").status_code == 200


def test_every_read_endpoint_and_command_status_share_the_window(
    alice, fresh_windows, settings
):
    settings.READ_THROTTLE_RATE = "2/hour"
    command = CommandRecord.objects.create(
        type="place-order", user=alice, payload={}, request_hash="-"
    )
    api = client_for(alice)
    assert api.get("/api/orders/").status_code == 200
    assert api.get(f"/api/commands/{command.pk}/").status_code == 200
    assert api.get("/api/products/").status_code == 429
    assert api.get(f"/api/commands/{command.pk}/").status_code == 429
