"""rebuild_projections, verify_projections and the admin pages."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from projections.models import Checkpoint, DeadLetter
from projections.registry import PROJECTOR_NAMES

from .conftest import rows, seed_history, settle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


def test_rebuild_projections_swaps_in_equal_tables_with_a_progress_bar(store):
    seed_history(store)
    settle()
    live = {name: rows(name) for name in PROJECTOR_NAMES}
    out, err = io.StringIO(), io.StringIO()

    call_command("rebuild_projections", "--batch-size", "5", stdout=out, stderr=err)

    assert {name: rows(name) for name in PROJECTOR_NAMES} == live
    assert "[" in err.getvalue()
    assert "100.0%" in err.getvalue()
    for name in PROJECTOR_NAMES:
        assert f"{name}: rebuilt" in out.getvalue()


def test_rebuild_without_progress_bar_is_quiet_on_stderr(store):
    seed_history(store)
    settle()
    err = io.StringIO()
    call_command(
        "rebuild_projections",
        "--projection",
        "order_summary",
        "--no-progress-bar",
        stdout=io.StringIO(),
        stderr=err,
    )
    assert err.getvalue() == ""


def test_the_live_projection_goes_on_after_a_rebuild(store):
    ids = seed_history(store)
    settle()
    call_command("rebuild_projections", "--no-progress-bar", stdout=io.StringIO())
    store.restock(ids["mug"], 5)
    settle()
    call_command("verify_projections", stdout=io.StringIO())


def test_verify_projections_reports_a_difference_and_fails(store):
    ids = seed_history(store)
    settle()
    with connections["read"].cursor() as cursor:
        cursor.execute(
            "UPDATE read_products SET available = 999 WHERE id = %s", [ids["mug"]]
        )
    out = io.StringIO()

    with pytest.raises(CommandError, match="product_catalogue"):
        call_command("verify_projections", stdout=out)

    assert "product_catalogue: different" in out.getvalue()
    assert "order_summary: equal" in out.getvalue()


def test_admin_shows_lag_and_dead_letters(store, admin_client, monkeypatch, settings):
    from projections.projectors import OrderSummaryProjector

    settings.PROJECTION_RETRY_DELAYS = ()
    monkeypatch.setattr(
        OrderSummaryProjector,
        "on_payment_captured",
        lambda self, event, recorded: 1 / 0,
    )
    seed_history(store)
    settle()
    store.restock(store.product("NEW-1"), 1)

    page = admin_client.get("/admin/projections/checkpoint/")
    assert page.status_code == 200
    assert b"lag" in page.content
    assert admin_client.get("/admin/projections/deadletter/").status_code == 200
    for model in ("productcatalogue", "ordersummary", "dailysales"):
        assert admin_client.get(f"/admin/projections/{model}/").status_code == 200

    monkeypatch.undo()
    letter = DeadLetter.objects.filter(status="parked").first()
    assert letter is not None
    response = admin_client.post(
        "/admin/projections/deadletter/",
        {"action": "replay", "_selected_action": [letter.pk]},
    )
    assert response.status_code == 302
    assert not DeadLetter.objects.filter(status__in=["parked", "waiting"]).exists()
    assert Checkpoint.objects.get(name="order_summary").last_error == ""
