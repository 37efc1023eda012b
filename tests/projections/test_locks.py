"""A projection's lock held by a host that vanished is taken over in bounded time."""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings
from django.db import connections, transaction

from config.database import session_options
from projections.locks import lock_key, projection_lock
from tests.support.processes import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


def lock_is_free(name: str) -> bool:
    with transaction.atomic(using="read"):
        return projection_lock(name, timeout_seconds=0.2)


@pytest.mark.parametrize("alias", ["default", "read"])
def test_every_session_ends_when_idle_in_a_transaction_or_its_peer_vanishes(alias):
    connection = connections[alias]
    with connection.cursor() as cursor:
        shown = {}
        for name in (
            "idle_in_transaction_session_timeout",
            "tcp_keepalives_idle",
            "tcp_keepalives_interval",
            "tcp_keepalives_count",
            "tcp_user_timeout",
        ):
            cursor.execute(f"SHOW {name}")
            shown[name] = cursor.fetchone()[0]
    assert shown == {
        "idle_in_transaction_session_timeout": "1min",
        "tcp_keepalives_idle": "30",
        "tcp_keepalives_interval": "10",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "60000",
    }
    # The client notices a vanished server too.
    assert connection.connection.info.get_parameters()["keepalives"] == "1"


def test_a_lock_held_by_a_session_idle_in_its_transaction_is_taken_over():
    # The settings' own options, with a timeout short enough for a test.
    options = session_options(
        idle_in_transaction_seconds=1,
        keepalives_idle=30,
        keepalives_interval=10,
        keepalives_count=3,
    )
    db = settings.DATABASES["read"]
    vanished = psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], **options
    )
    try:
        # A runner took the lock, then its host stopped talking mid-transaction.
        vanished.execute(
            "SELECT pg_advisory_xact_lock(%s)", [lock_key("order_summary")]
        )
        assert not lock_is_free("order_summary")

        wait_until(lambda: lock_is_free("order_summary"), timeout=15, interval=0.2)

        with pytest.raises(psycopg.Error, match="idle-in-transaction timeout"):
            vanished.execute("SELECT 1")
    finally:
        vanished.close()
