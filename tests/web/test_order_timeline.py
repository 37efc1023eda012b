"""The order timeline in Chromium: the order after each event, from past-state reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.commands import place_order, register_product, run
from tests.support.processes import wait_until

from .conftest import sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


def test_a_customer_opens_an_orders_timeline_and_sees_it_after_each_event(
    web, worker, staff_api, alice_api, browser, output_dir: Path
):
    product_id = register_product(staff_api, sku="WEB-T", stock=5)
    placed = place_order(alice_api, product_id, quantity=2)
    assert placed["status"] == "succeeded", placed
    order_id = placed["aggregate_id"]
    cancelled = run(alice_api, "cancel-order", {"order_id": order_id, "reason": "x"})
    assert cancelled["status"] == "succeeded", cancelled
    wait_until(
        lambda: (
            alice_api.get(f"/api/orders/{order_id}/").json().get("status")
            == "cancelled"
        )
    )

    page = sign_in(browser, web, "alice")
    page.get_by_role("link", name="My orders").click()
    order = page.locator(f'article[data-order-id="{order_id}"]')
    expect(order.locator(".badge").first).to_have_text("cancelled")
    order.get_by_role("button", name="Timeline: the order after each event").click()
    toggle = order.locator(f"#past-toggle-{order_id}")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(toggle).to_have_text("Hide the timeline")
    table = order.get_by_role("table", name=f"Order {order_id[:8]} after each event")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.locator(".badge")).to_have_text(["placed", "cancelled"])
    expect(rows.nth(0).locator(".changes")).to_contain_text("placed, total")
    expect(rows.nth(1).locator(".changes")).to_have_text("status placed → cancelled")
    expect(rows.locator("td").nth(0)).to_have_text("placed")
    page.screenshot(path=output_dir / "browser-order-timeline.png", full_page=True)
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(table).to_be_hidden()
