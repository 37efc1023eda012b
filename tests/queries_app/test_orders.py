"""GET /api/orders/ and /api/orders/<id>/: own orders for customers, all for staff."""

from __future__ import annotations

import uuid

import pytest

from . import factories as f

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_anonymous_users_get_401_on_every_order_read(client, alice) -> None:
    order = f.order(alice)
    for url in ("/api/orders/", f"/api/orders/{order.id}/"):
        response = client.get(url)
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


def test_a_customer_lists_only_their_own_orders(alice, bob, alice_api, bob_api) -> None:
    mine = f.order(alice)
    theirs = f.order(bob)
    assert ids(alice_api.get("/api/orders/")) == [str(mine.id)]
    assert ids(bob_api.get("/api/orders/")) == [str(theirs.id)]


def test_a_customer_cannot_widen_the_list_with_customer_id(
    alice, bob, alice_api
) -> None:
    f.order(bob)
    assert ids(alice_api.get("/api/orders/", {"customer_id": bob.pk})) == []


def test_staff_list_every_order_and_may_filter_by_customer(
    alice, bob, staff_api
) -> None:
    a, b = f.order(alice), f.order(bob, days=1)
    assert ids(staff_api.get("/api/orders/")) == [str(b.id), str(a.id)]
    assert ids(staff_api.get("/api/orders/", {"customer_id": alice.pk})) == [str(a.id)]


def test_an_order_shows_its_lines_total_and_timeline_to_its_customer(
    alice, alice_api
) -> None:
    order = f.order(alice, status="paid", total_cents=1200)
    response = alice_api.get(f"/api/orders/{order.id}/")
    assert response.status_code == 200
    body = response.json()
    assert {"id", "status", "lines", "total_cents", "created_at", "history"} <= set(
        body
    )
    assert body["status"] == "paid"
    assert body["total_cents"] == 1200
    assert body["lines"][0]["quantity"] == 2
    assert body["history"][0]["event"] == "order.placed"


def test_another_customers_order_is_404_never_403(alice, bob_api) -> None:
    order = f.order(alice)
    response = bob_api.get(f"/api/orders/{order.id}/")
    assert response.status_code == 404
    assert response.json()["code"] == "order_not_found"
    missing = bob_api.get(f"/api/orders/{uuid.uuid4()}/")
    assert (missing.status_code, missing.json()["code"]) == (404, "order_not_found")


def test_staff_see_any_order(alice, staff_api) -> None:
    order = f.order(alice)
    response = staff_api.get(f"/api/orders/{order.id}/")
    assert response.status_code == 200
    assert response.json()["customer_id"] == alice.pk


def test_orders_filter_by_status(alice, alice_api) -> None:
    placed = f.order(alice, status="placed")
    f.order(alice, status="shipped")
    assert ids(alice_api.get("/api/orders/", {"status": "placed"})) == [str(placed.id)]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"created_after": "2024-05-02"}, ["d2", "d1"]),
        ({"created_before": "2024-05-02"}, ["d0"]),
        ({"created_after": "2024-05-02T12:00:00Z"}, ["d2", "d1"]),
        ({"created_after": "2024-05-02T12:00:01+00:00"}, ["d2"]),
        ({"created_after": "2024-05-02T14:00:00+02:00"}, ["d2", "d1"]),
        ({"created_after": "2024-05-01", "created_before": "2024-05-03"}, ["d1", "d0"]),
    ],
)
def test_orders_filter_by_creation_dates_and_datetimes(
    alice, alice_api, params, expected
) -> None:
    made = {f"d{days}": str(f.order(alice, days=days).id) for days in range(3)}
    assert ids(alice_api.get("/api/orders/", params)) == [made[n] for n in expected]


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("-created_at", ["x", "y", "z"]),
        ("created_at", ["z", "y", "x"]),
        ("total_cents", ["y", "z", "x"]),
        ("-total_cents", ["x", "z", "y"]),
    ],
)
def test_orders_are_ordered_from_the_fixed_list(
    alice, alice_api, ordering, expected
) -> None:
    made = {
        "x": f.order(alice, days=2, total_cents=900),
        "y": f.order(alice, days=1, total_cents=100),
        "z": f.order(alice, days=0, total_cents=500),
    }
    got = ids(alice_api.get("/api/orders/", {"ordering": ordering}))
    assert got == [str(made[n].id) for n in expected]
