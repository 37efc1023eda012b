"""GET /api/stats/sales/: daily sales rows, staff only."""

from __future__ import annotations

from datetime import date

import pytest

from . import factories as f

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]


def test_anonymous_users_get_401_on_sales_stats(client) -> None:
    response = client.get("/api/stats/sales/")
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")


def test_customers_get_403_on_sales_stats(alice_api) -> None:
    response = alice_api.get("/api/stats/sales/")
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")


def test_staff_read_daily_sales_rows_newest_first(staff_api) -> None:
    f.sales_day(date(2024, 5, 1), orders=2, revenue_cents=2400, units=4)
    f.sales_day(date(2024, 5, 2), cancelled_orders=0)
    response = staff_api.get("/api/stats/sales/")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["day"] for row in rows] == ["2024-05-02", "2024-05-01"]
    assert rows[1] == {
        "day": "2024-05-01",
        "orders": 2,
        "revenue_cents": 2400,
        "units": 4,
        "cancelled_orders": 1,
    }


def test_sales_filter_by_an_inclusive_date_range(staff_api) -> None:
    for day in range(1, 6):
        f.sales_day(date(2024, 5, day))
    response = staff_api.get(
        "/api/stats/sales/",
        {"from": "2024-05-02", "to": "2024-05-04", "ordering": "day"},
    )
    days = [row["day"] for row in response.json()["results"]]
    assert days == ["2024-05-02", "2024-05-03", "2024-05-04"]


def test_a_sales_range_that_ends_before_it_starts_is_refused(staff_api) -> None:
    response = staff_api.get(
        "/api/stats/sales/", {"from": "2024-05-04", "to": "2024-05-02"}
    )
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
