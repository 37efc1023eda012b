"""Consistency tokens: `min_position`, the behind answer and X-Read-Position."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from commands_app.eventstore import Position
from projections import progress
from queries_app import consistency

from . import factories as f

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]

READS = [
    ("alice_api", "/api/products/", ("product_catalogue",)),
    ("alice_api", "/api/orders/", ("order_summary",)),
    ("staff_api", "/api/stats/sales/", ("daily_sales",)),
]


@pytest.mark.parametrize(("who", "url", "names"), READS)
def test_every_read_reports_the_position_it_reflects(request, who, url, names) -> None:
    client = request.getfixturevalue(who)
    f.checkpoints(100, 40, names)
    response = client.get(url)
    assert response.status_code == 200
    assert response["X-Read-Position"] == "40"


def test_the_reported_position_is_the_least_checkpoint_in_reader_order(
    alice_api,
) -> None:
    f.checkpoints(7, 90, ("product_catalogue",))
    assert alice_api.get("/api/products/")["X-Read-Position"] == "90"
    assert progress.reached(("product_catalogue", "order_summary")) == Position()
    f.checkpoints(8, 12, ("order_summary",))
    # (7, 90) comes before (8, 12): transaction order first, then position.
    assert progress.reached(("product_catalogue", "order_summary")) == Position(7, 90)


def test_a_projection_without_a_checkpoint_reflects_position_zero(alice_api) -> None:
    assert alice_api.get("/api/products/")["X-Read-Position"] == "0"


@pytest.mark.parametrize(("who", "url", "names"), READS)
def test_an_applied_min_position_answers_at_once(request, who, url, names) -> None:
    client = request.getfixturevalue(who)
    tx_id, position = f.append_event()
    f.checkpoints(tx_id, position, names)
    started = time.monotonic()
    response = client.get(url, {"min_position": position})
    assert response.status_code == 200, response.content
    assert time.monotonic() - started < 0.5
    assert response["X-Read-Position"] == str(position)


@override_settings(READ_MIN_POSITION_WAIT_SECONDS=0.3)
@pytest.mark.parametrize(("who", "url", "names"), READS)
def test_an_unapplied_min_position_says_behind_within_the_bound(
    request, who, url, names
) -> None:
    client = request.getfixturevalue(who)
    tx_id, position = f.append_event()
    f.checkpoints(tx_id - 1, position - 1, names)
    started = time.monotonic()
    response = client.get(url, {"min_position": position})
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 1.5
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json() == {
        "code": "read_model_behind",
        "message": response.json()["message"],
        "details": {"min_position": position, "position": position - 1},
    }


@override_settings(READ_MIN_POSITION_WAIT_SECONDS=5)
@pytest.mark.parametrize(("who", "url", "names"), READS)
def test_a_min_position_beyond_the_head_is_refused_at_once_without_a_wait_slot(
    request, monkeypatch, who, url, names
) -> None:
    client = request.getfixturevalue(who)
    _tx_id, head = f.append_event()
    f.checkpoints(5, 5, names)
    taken: list[bool] = []
    monkeypatch.setattr(consistency, "_wait_slots", lambda: taken.append(True))
    started = time.monotonic()
    response = client.get(url, {"min_position": head + 1})
    assert time.monotonic() - started < 1
    assert response.status_code == 400
    assert response.json() == {
        "code": "position_beyond_head",
        "message": response.json()["message"],
        "details": {"min_position": head + 1, "head": head},
    }
    assert not taken
    assert client.get(url, {"min_position": 10**12}).json()["code"] == (
        "position_beyond_head"
    )


def test_details_are_behind_too_when_the_position_is_not_applied(
    alice, alice_api
) -> None:
    order = f.order(alice)
    _tx_id, position = f.append_event()
    with override_settings(READ_MIN_POSITION_WAIT_SECONDS=0.1):
        response = alice_api.get(f"/api/orders/{order.id}/", {"min_position": position})
    assert (response.status_code, response.json()["code"]) == (503, "read_model_behind")


def test_position_zero_is_always_applied(alice_api) -> None:
    assert alice_api.get("/api/products/", {"min_position": 0}).status_code == 200


def test_a_checkpoint_further_on_but_in_an_earlier_transaction_has_not_applied_it(
    alice_api,
) -> None:
    """Positions are handed out at insert: a later position may commit first."""
    tx_id, position = f.append_event()
    names = ("product_catalogue",)
    f.checkpoints(tx_id - 1, position + 50, names)
    assert not progress.is_applied(position, projections=names)
    f.checkpoints(tx_id, position - 1, names)
    assert not progress.is_applied(position, projections=names)
    f.checkpoints(tx_id, position, names)
    assert progress.is_applied(position, projections=names)
    f.checkpoints(tx_id + 1, 1, names)
    assert progress.is_applied(position, projections=names)


def test_a_position_applied_only_by_some_projections_is_not_applied() -> None:
    tx_id, position = f.append_event()
    f.checkpoints(tx_id, position, ("order_summary",))
    f.checkpoints(tx_id, position - 1, ("daily_sales",))
    assert not progress.is_applied(
        position, projections=("order_summary", "daily_sales")
    )
    assert progress.is_applied(position, projections=("order_summary",))


def test_a_read_answers_as_soon_as_the_position_is_applied_during_the_wait() -> None:
    calls = []

    def applied(names, position) -> bool:
        calls.append(time.monotonic())
        return len(calls) >= 3

    started = time.monotonic()
    assert consistency.wait_for_position(("x",), 9, timeout=5, applied=applied)
    assert time.monotonic() - started < 1


def test_waits_beyond_the_concurrency_limit_answer_after_one_check(monkeypatch) -> None:
    slots = consistency._wait_slots()
    taken = 0
    while slots.acquire(blocking=False):
        taken += 1
    try:
        started = time.monotonic()
        assert not consistency.wait_for_position(
            ("x",), 9, timeout=5, applied=lambda names, position: False
        )
        assert time.monotonic() - started < 0.2
    finally:
        for _ in range(taken):
            slots.release()
