"""The projections admin driven as a staff member would: its actions posted
through the test client, rebuild and verify run by the real worker."""

from __future__ import annotations

import pytest
from celery.signals import before_task_publish
from django.core.cache import cache
from django.db import connections
from django.test import Client

from projections import maintenance
from projections.models import Checkpoint, DeadLetter
from projections.rebuild import index_definitions

from ..support.processes import wait_until
from .conftest import committed_head, rows, seed_history, settle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

CHECKPOINTS = "/admin/projections/checkpoint/"


@pytest.fixture(autouse=True)
def _no_maintenance_jobs() -> None:
    for name in ("product_catalogue", "order_summary"):
        cache.delete(maintenance._lock_key(name))
        cache.delete(maintenance._status_key(name))


def post_action(client: Client, url: str, action: str, selected: list) -> str:
    response = client.post(
        url, {"action": action, "_selected_action": selected}, follow=True
    )
    assert response.status_code == 200
    return response.content.decode()


def finished(client: Client, name: str) -> str:
    """Wait for the job shown in the checkpoint list to end; return the page."""

    def ended() -> str | None:
        # The state first, then the page: a page read before the job ended
        # would show it still running.
        status = maintenance.job_status(name) or {}
        if status.get("state") not in ("done", "failed"):
            return None
        return client.get(CHECKPOINTS).content.decode()

    return wait_until(ended, timeout=60, interval=0.2)


def test_a_rebuild_from_the_admin_runs_on_the_maintenance_queue_with_long_limits(
    worker, store, admin_client: Client
):
    seed_history(store)
    settle()
    live = rows("product_catalogue")
    published: list[dict] = []

    def capture(sender=None, headers=None, routing_key=None, **kwargs):
        published.append({"task": sender, "queue": routing_key, **(headers or {})})

    before_task_publish.connect(capture)
    try:
        page = post_action(admin_client, CHECKPOINTS, "rebuild", ["product_catalogue"])
    finally:
        before_task_publish.disconnect(capture)

    assert "Rebuild of product_catalogue queued" in page
    (sent,) = [p for p in published if p["task"] == "projections.rebuild"]
    assert sent["queue"] == "maintenance"
    # (hard, soft) limits of its own, far beyond the 300 s of other tasks.
    assert list(sent["timelimit"]) == [
        maintenance.TIME_LIMIT_SECONDS,
        maintenance.SOFT_TIME_LIMIT_SECONDS,
    ]
    page = finished(admin_client, "product_catalogue")
    assert "rebuild done" in page
    assert rows("product_catalogue") == live
    # The swapped-in table kept the search indexes, under their names.
    assert {"read_products_search_name", "read_products_search_sku"} <= set(
        index_definitions("read_products")
    )
    details = admin_client.get(f"{CHECKPOINTS}product_catalogue/change/")
    status = maintenance.job_status("product_catalogue")
    assert status is not None
    # Its progress went up to the store's head.
    assert status["done"] == status["target"] == committed_head()[1]
    assert f"&quot;target&quot;: {status['target']}" in details.content.decode()


def test_a_second_rebuild_is_refused_while_one_is_queued_or_running(
    store, admin_client: Client
):
    Checkpoint.objects.create(name="product_catalogue")
    cache.add(maintenance._lock_key("product_catalogue"), "rebuild", 60)

    page = post_action(admin_client, CHECKPOINTS, "rebuild", ["product_catalogue"])

    assert "already queued or running" in page
    assert maintenance.job_status("product_catalogue") is None


def test_verify_from_the_admin_shows_the_checksums_of_a_drifted_read_model(
    worker, store, admin_client: Client
):
    ids = seed_history(store)
    settle()
    with connections["read"].cursor() as cursor:
        cursor.execute(
            "UPDATE read_products SET available = 999 WHERE id = %s", [ids["mug"]]
        )
    post_action(admin_client, CHECKPOINTS, "verify", ["product_catalogue"])
    page = finished(admin_client, "product_catalogue")
    assert "verify done: DIFFERENT" in page
    status = maintenance.job_status("product_catalogue")
    assert status is not None
    assert status["equal"] is False
    assert status["live"]["read_products"] != status["rebuilt"]["read_products"]
    details = admin_client.get(f"{CHECKPOINTS}product_catalogue/change/")
    assert status["live"]["read_products"] in details.content.decode()

    # Rebuilt from the store, the same read model verifies equal.
    post_action(admin_client, CHECKPOINTS, "rebuild", ["product_catalogue"])
    finished(admin_client, "product_catalogue")
    assert (maintenance.job_status("product_catalogue") or {})["state"] == "done"
    post_action(admin_client, CHECKPOINTS, "verify", ["product_catalogue"])
    page = finished(admin_client, "product_catalogue")
    assert "verify done: equal" in page, maintenance.job_status("product_catalogue")


def park_an_order_summary_event(store, monkeypatch, settings) -> DeadLetter:
    from projections.projectors import OrderSummaryProjector

    settings.PROJECTION_RETRY_DELAYS = ()
    monkeypatch.setattr(
        OrderSummaryProjector,
        "on_payment_captured",
        lambda self, event, recorded: 1 / 0,
    )
    seed_history(store)
    settle()
    monkeypatch.undo()
    letter = DeadLetter.objects.filter(
        projection="order_summary", status="parked"
    ).first()
    assert letter is not None
    return letter


def test_discard_from_the_admin_gives_up_on_a_parked_event(
    store, admin_client: Client, monkeypatch, settings
):
    letter = park_an_order_summary_event(store, monkeypatch, settings)

    page = post_action(
        admin_client, "/admin/projections/deadletter/", "discard", [letter.pk]
    )

    assert "Discarded 1 dead letter(s)." in page
    letter.refresh_from_db()
    assert letter.status == "discarded"
    assert letter.resolved_at is not None


def test_replay_from_the_checkpoint_admin_applies_the_parked_events(
    store, admin_client: Client, monkeypatch, settings
):
    letter = park_an_order_summary_event(store, monkeypatch, settings)

    page = post_action(admin_client, CHECKPOINTS, "replay", ["order_summary"])

    assert "Order_summary: replayed" in page
    assert "still parked 0" in page
    letter.refresh_from_db()
    assert letter.status == "replayed"
    assert not DeadLetter.objects.filter(status__in=["parked", "waiting"]).exists()
    with connections["read"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM read_orders WHERE status = 'paid'")
        assert cursor.fetchone()[0] == 1


def test_the_catalogue_admin_searches_20000_products_by_sku_or_name(
    admin_client: Client,
):
    with connections["read"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO read_products "
            "(id, sku, name, price_cents, available, updated_at, position) "
            "SELECT md5('adm' || i)::uuid, 'ADM-' || lpad(i::text, 5, '0'), "
            "'Admin item ' || lpad(i::text, 5, '0'), 100, 1, now(), 0 "
            "FROM generate_series(1, 20000) AS i"
        )
    url = "/admin/projections/productcatalogue/"

    first = admin_client.get(url).content.decode()
    assert first.count('class="field-sku"') == 50
    by_sku = admin_client.get(f"{url}?q=adm-1234").content.decode()
    assert by_sku.count('class="field-sku"') == 10  # ADM-12340 to ADM-12349
    by_name = admin_client.get(f"{url}?q=ITEM 19999").content.decode()
    assert by_name.count('class="field-sku"') == 1
    assert "ADM-19999" in by_name
