"""GET /api/orders/<id>/ and /api/products/<id>/ with ?as_of_version or ?as_of."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID, uuid4

import pytest
from django.db import connection
from rest_framework.fields import DateTimeField

from tests.projections.conftest import Store

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]

TODAY_FIELDS = {
    "id",
    "customer_id",
    "status",
    "lines",
    "shipping_address",
    "total_cents",
    "currency",
    "refunded_cents",
    "created_at",
    "updated_at",
    "history",
}


@pytest.fixture
def store() -> Store:
    return Store()


def times(stream: str) -> list[datetime]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT recorded_at FROM events WHERE stream_id = %s ORDER BY version",
            [stream],
        )
        return [row[0] for row in cursor.fetchall()]


def iso(moment: datetime) -> str:
    return DateTimeField().to_representation(moment)


def shipped_order(store: Store, customer) -> UUID:
    product_id = store.product("MUG-1")
    order_id = store.order(product_id, customer=customer.pk)
    store.pay(order_id)
    store.ship(order_id)
    return order_id


def test_the_owner_reads_each_version_of_their_order_with_todays_fields(
    store, alice, alice_api
) -> None:
    order_id = shipped_order(store, alice)
    recorded = times(f"order-{order_id}")
    for version, status in enumerate(["placed", "paid", "shipped"], start=1):
        response = alice_api.get(f"/api/orders/{order_id}/", {"as_of_version": version})
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == TODAY_FIELDS | {"as_of_version", "as_of"}
        assert (body["status"], body["as_of_version"]) == (status, version)
        assert body["as_of"] == iso(recorded[version - 1])
        assert body["updated_at"] == iso(recorded[version - 1])
        assert [entry["event"] for entry in body["history"]] == [
            "placed",
            "paid",
            "shipped",
        ][:version]
        assert "X-Read-Position" not in response


def test_an_order_as_of_a_time_reflects_the_events_recorded_by_then(
    store, alice, alice_api
) -> None:
    order_id = shipped_order(store, alice)
    placed, paid, _ = times(f"order-{order_id}")
    url = f"/api/orders/{order_id}/"
    between = paid - timedelta(microseconds=1)
    response = alice_api.get(url, {"as_of": iso(between)})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["as_of_version"]) == ("placed", 1)
    assert body["as_of"] == iso(between)
    assert alice_api.get(url, {"as_of": iso(paid)}).json()["status"] == "paid"
    later = alice_api.get(url, {"as_of": "2999-01-01T00:00:00Z"}).json()
    assert (later["status"], later["as_of_version"]) == ("shipped", 3)
    # The instant reflected is never in the future.
    assert DateTimeField().to_internal_value(later["as_of"]) <= datetime.now(
        tz=placed.tzinfo
    )


def test_an_order_before_it_was_placed_is_404(store, alice, alice_api) -> None:
    order_id = shipped_order(store, alice)
    placed = times(f"order-{order_id}")[0]
    for as_of in (iso(placed - timedelta(microseconds=1)), "2001-01-01"):
        response = alice_api.get(f"/api/orders/{order_id}/", {"as_of": as_of})
        assert response.status_code == 404, as_of
        assert response.json()["code"] == "order_not_found"


def test_staff_read_any_orders_past_states(store, alice, staff_api) -> None:
    order_id = shipped_order(store, alice)
    body = staff_api.get(f"/api/orders/{order_id}/", {"as_of_version": 2}).json()
    assert (body["customer_id"], body["status"]) == (alice.pk, "paid")


def test_another_customer_gets_404_for_every_past_state_read(
    store, alice, bob_api
) -> None:
    order_id = shipped_order(store, alice)
    url = f"/api/orders/{order_id}/"
    # Beyond the head too: the 400 would tell them the order exists.
    for params in (
        {"as_of_version": 1},
        {"as_of_version": 99},
        {"as_of": "2999-01-01"},
    ):
        response = bob_api.get(url, params)
        assert response.status_code == 404, params
        assert response.json()["code"] == "order_not_found"
    missing = bob_api.get(f"/api/orders/{uuid4()}/", {"as_of_version": 1})
    assert (missing.status_code, missing.json()["code"]) == (404, "order_not_found")
    garbage = bob_api.get("/api/orders/not-a-uuid/", {"as_of_version": 1})
    assert garbage.status_code == 404


def test_a_version_beyond_the_orders_current_one_is_400(
    store, alice, alice_api
) -> None:
    order_id = shipped_order(store, alice)
    response = alice_api.get(f"/api/orders/{order_id}/", {"as_of_version": 4})
    assert response.status_code == 400
    assert response.json() == {
        "code": "version_beyond_head",
        "message": "Version 4 is beyond the current version (3).",
        "details": {"as_of_version": 4, "version": 3},
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"as_of_version": 1, "as_of": "2024-05-01"}, "as_of"),
        ({"as_of_version": "two"}, "as_of_version"),
        ({"as_of_version": "1.5"}, "as_of_version"),
        ({"as_of_version": "-1"}, "as_of_version"),
        ({"as_of_version": "0"}, "as_of_version"),
        ({"as_of_version": str(2**31)}, "as_of_version"),
        ({"as_of_version": ""}, "as_of_version"),
        ({"as_of": "yesterday"}, "as_of"),
        ({"as_of": "2024-13-45"}, "as_of"),
        ({"as_of": "2024-05-01T12:00:00\x00"}, "as_of"),
        ({"as_of": "9999-12-31T23:59:59-14:00"}, "as_of"),
        ({"as_of": ""}, "as_of"),
        ({"as_of_version": 1, "min_position": 1}, "min_position"),
        ({"as_of": "2024-05-01", "min_position": 1}, "min_position"),
    ],
)
def test_bad_past_state_parameters_are_400_with_the_field_named(
    store, alice, staff_api, params, field
) -> None:
    product_id = store.product("MUG-1")
    order_id = store.order(product_id, customer=alice.pk)
    for url in (f"/api/orders/{order_id}/", f"/api/products/{product_id}/"):
        response = staff_api.get(url, params)
        assert response.status_code == 400, (url, params, response.content)
        body = response.json()
        assert body["code"] == "validation_error"
        assert field in body["details"], body


def test_staff_read_a_products_past_states(store, staff_api) -> None:
    product_id = store.product("MUG-1", stock=10)
    store.restock(product_id, 5)
    store.order(product_id, quantity=3)
    url = f"/api/products/{product_id}/"
    registered, restocked, _ = times(f"product-{product_id}")
    expected = {1: 10, 2: 15, 3: 12}
    for version, available in expected.items():
        body = staff_api.get(url, {"as_of_version": version}).json()
        assert (body["available"], body["as_of_version"]) == (available, version)
        assert set(body) == {
            "id",
            "sku",
            "name",
            "price_cents",
            "available",
            "as_of_version",
            "as_of",
        }
    body = staff_api.get(url, {"as_of": iso(restocked)}).json()
    assert (body["available"], body["as_of_version"]) == (15, 2)
    before = staff_api.get(url, {"as_of": iso(registered - timedelta(seconds=1))})
    assert (before.status_code, before.json()["code"]) == (404, "product_not_found")
    beyond = staff_api.get(url, {"as_of_version": 4})
    assert (beyond.status_code, beyond.json()["code"]) == (400, "version_beyond_head")
    missing = staff_api.get(f"/api/products/{uuid4()}/", {"as_of_version": 1})
    assert (missing.status_code, missing.json()["code"]) == (404, "product_not_found")


def test_customers_may_not_read_a_products_past_states(store, alice_api) -> None:
    product_id = store.product("MUG-1")
    url = f"/api/products/{product_id}/"
    for params in ({"as_of_version": 1}, {"as_of": "2999-01-01"}):
        response = alice_api.get(url, params)
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
    # Unknown products too: a 404 would tell them which ids exist.
    response = alice_api.get(f"/api/products/{uuid4()}/", {"as_of_version": 1})
    assert response.status_code == 403


def test_anonymous_past_state_reads_are_401(client, store) -> None:
    product_id = store.product("MUG-1")
    order_id = store.order(product_id)
    for url in (f"/api/orders/{order_id}/", f"/api/products/{product_id}/"):
        response = client.get(url, {"as_of_version": 1})
        assert response.status_code == 401
