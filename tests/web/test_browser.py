"""The browser app in Chromium, against the real server and worker processes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.commands import register_product

from .conftest import off_the_loop, sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2}


def record_busy_states(page: Any, selector: str) -> None:
    """Remember every aria-busy value and text the element goes through."""
    page.evaluate(
        """(selector) => {
            window.__seen = [];
            window.__loadedOnce = true;
            const node = document.querySelector(selector);
            const note = () => window.__seen.push(
                [node.getAttribute("aria-busy"), node.textContent]);
            new MutationObserver(note).observe(
                node, {attributes: true, childList: true, subtree: true,
                       characterData: true});
        }""",
        selector,
    )


def add_to_cart_and_fill_address(page: Any, product_id: str) -> Any:
    card = page.locator(f'[data-product-id="{product_id}"]')
    expect(card.locator(".available")).to_have_text("5")
    card.get_by_role("button", name=re.compile(r"^Add .* to cart$")).click()
    expect(page.locator("#cart")).to_contain_text("Total")
    page.get_by_label("Full name").fill("Alice Martin")
    page.get_by_label("Address").fill("1 rue de Rivoli")
    page.get_by_label("City").fill("Paris")
    page.get_by_label("Postal code").fill("75001")
    return card


def place_order(page: Any) -> str:
    record_busy_states(page, "#place-order")
    page.get_by_role("button", name="Place order").click()
    status = page.locator("#checkout-status")
    expect(status).to_contain_text("Order placed", timeout=30_000)
    expect(page.locator("#place-order")).not_to_have_attribute("aria-busy", "true")
    seen = page.evaluate("window.__seen")
    assert ["true", "Place order"] in seen, seen
    assert page.evaluate("window.__loadedOnce") is True, "the page was reloaded"
    match = re.search(r"Order placed: ([0-9a-f]{8})", status.inner_text())
    assert match
    return match.group(1)


def resolved_by(page: Any) -> list[str]:
    return list(page.evaluate("Object.values(window.Live.stats.resolvedBy)"))


def without_status_polls(page: Any) -> None:
    """Fail the page's command status polls: only a push can resolve a command.

    The page polls a command once as soon as it is accepted (`track` in
    live.js); a command already final by then is resolved by that poll before
    its push arrives. The tests of the push path cut the polls, as the polling
    test cuts the socket.
    """
    status = re.compile(r"/api/commands/[0-9a-f-]{36}/$")
    page.route(status, lambda route: route.abort())


def test_a_customer_places_and_pays_an_order_and_sees_each_result_pushed(
    web, worker, staff_api, alice, browser, output_dir: Path
):
    product_id = register_product(staff_api, sku="WEB-A", stock=5)
    page = sign_in(browser, web, "alice", **PHONE)
    without_status_polls(page)
    card = add_to_cart_and_fill_address(page, product_id)
    short_id = place_order(page)
    # The stock shown comes from the read API at the command's position.
    expect(card.locator(".available")).to_have_text("4")
    assert resolved_by(page) == ["push"]

    page.get_by_role("link", name="My orders").click()
    order = page.locator("article.order", has_text=f"Order {short_id}")
    expect(order.locator(".badge")).to_have_text("placed")
    order.get_by_label("Card number").fill("4242 4242 4242 4242")
    order.get_by_label("CVC").fill("123")
    order.get_by_role("button", name=re.compile(r"^Pay ")).click()
    # The order list is re-rendered from the read model once the push arrives.
    order = page.locator("article.order", has_text=f"Order {short_id}")
    expect(order.get_by_role("status")).to_have_text("Payment accepted.")
    expect(order.locator(".badge")).to_have_text("paid")
    # Placed, the payment requested, then captured by the charge effect.
    expect(order.locator(".timeline li .event")).to_have_text(
        ["placed", "payment_requested", "paid"]
    )
    assert resolved_by(page) == ["push", "push"]
    assert page.evaluate("window.Live.stats.polls") == 0
    page.screenshot(path=output_dir / "browser-a-order-paid.png", full_page=True)


def test_with_the_websocket_cut_the_order_finishes_by_polling(
    web, worker, staff_api, alice, browser, output_dir: Path
):
    product_id = register_product(staff_api, sku="WEB-B", stock=5)
    page = sign_in(browser, web, "alice")
    # Refuse every new socket, then drop the open one: only polling is left.
    page.route_web_socket(re.compile(r"/ws/commands/$"), lambda ws: ws.close())
    page.evaluate("window.Live.socket().close()")
    expect(page.locator("#connection")).to_have_attribute("data-state", "offline")
    card = add_to_cart_and_fill_address(page, product_id)
    place_order(page)
    expect(card.locator(".available")).to_have_text("4")
    assert resolved_by(page) == ["poll"]
    assert page.evaluate("window.Live.stats.pushes") == 0
    expect(page.locator("#connection")).not_to_have_attribute("data-state", "live")
    page.screenshot(path=output_dir / "browser-b-order-by-polling.png", full_page=True)


def test_a_staff_import_shows_its_progress_reaching_100_percent(
    web, worker, staff, browser, output_dir: Path, tmp_path: Path
):
    rows = ["sku,name,price_cents,initial_stock"]
    rows += [
        f'CAT-{i:05d},"Catalogue item {i}, blue",{100 + i},{i % 7}' for i in range(1500)
    ]
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text("\n".join(rows) + "\n")
    page = sign_in(browser, web, "staff")
    page.get_by_role("link", name="Import").click()
    page.get_by_label("Catalogue file").set_input_files(catalogue)
    expect(page.locator("#import-summary")).to_contain_text("1500 products ready")
    page.evaluate(
        """() => {
            window.__percents = [];
            const node = document.querySelector("#import-percent");
            new MutationObserver(() => window.__percents.push(node.textContent))
                .observe(node, {childList: true, characterData: true, subtree: true});
        }"""
    )
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#import-status")).to_have_text(
        "Import finished: 1500 imported, 0 skipped.", timeout=60_000
    )
    expect(page.locator("#import-progress")).to_have_attribute("value", "100")
    expect(page.locator("#import-percent")).to_have_text("100 %")
    percents = [int(p.split()[0]) for p in page.evaluate("window.__percents")]
    assert percents == sorted(percents)
    assert any(0 < p < 100 for p in percents), percents
    expect(page.locator("#import-feed")).to_contain_text("100 %")
    page.screenshot(path=output_dir / "browser-c-import-done.png", full_page=True)


def test_a_declined_card_is_explained_and_the_order_stays_payable(
    web, worker, staff_api, alice, browser, output_dir: Path
):
    product_id = register_product(staff_api, sku="WEB-D", stock=5)
    page = sign_in(browser, web, "alice")
    add_to_cart_and_fill_address(page, product_id)
    short_id = place_order(page)
    page.get_by_role("link", name="My orders").click()
    order = page.locator("article.order", has_text=f"Order {short_id}")
    order.get_by_label("Card number").fill("4000 0000 0000 0002")
    order.get_by_label("CVC").fill("123")
    pay = order.get_by_role("button", name=re.compile(r"^Pay "))
    pay.click()
    expect(order.get_by_role("status")).to_have_text(
        "Your card was declined. Please try another card.", timeout=20_000
    )
    expect(pay).to_be_enabled()
    expect(order.locator(".badge")).to_have_text("placed")
    # Focus moves to the outcome, so a screen reader user hears it at once.
    assert page.evaluate("document.activeElement.getAttribute('role')") == "status"


def test_the_staff_dashboard_plots_live_figures(
    web, worker, staff_api, staff, browser, output_dir: Path
):
    from commands_app import dashboard

    page = sign_in(browser, web, "staff")
    page.get_by_role("link", name="Dashboard").click()
    for i in range(3):
        register_product(staff_api, sku=f"DASH-{i}")
    assert off_the_loop(dashboard.push_dashboard)
    rows = page.locator("#lag-table tbody tr")
    expect(rows.filter(has_text="order_summary")).to_have_count(1)
    expect(page.locator("#chart-rate-text")).to_contain_text("commands this minute")
    expect(page.locator("#chart-success-text")).to_contain_text("100 % succeeded")
    page.screenshot(path=output_dir / "browser-d-dashboard.png", full_page=True)


def test_a_customer_changes_an_unpaid_order_and_sees_saving_until_the_push(
    web, worker, staff_api, alice, browser, output_dir: Path
):
    from tests.conftest import client_for
    from tests.support.commands import place_order as place_order_by_api

    product_id = register_product(staff_api, sku="WEB-EDIT", stock=5, price=1000)
    placed = off_the_loop(
        lambda: place_order_by_api(client_for(alice), product_id, quantity=1)
    )
    short_id = placed["aggregate_id"][:8]
    page = sign_in(browser, web, "alice", **PHONE)
    without_status_polls(page)
    page.get_by_role("link", name="My orders").click()
    order = page.locator("article.order", has_text=f"Order {short_id}")
    order.get_by_text("Change order").click()
    order.get_by_label("Product WEB-EDIT").fill("3")
    order.get_by_label("Town").fill("Lyon")
    record_busy_states(page, f"#customerActions-status-{placed['aggregate_id']}")
    order.get_by_role("button", name="Save changes").click()
    order = page.locator("article.order", has_text=f"Order {short_id}")
    expect(order.get_by_role("status")).to_have_text("Order changed.")
    seen = page.evaluate("window.__seen")
    assert ["true", "Saving…"] in seen, seen
    expect(order.locator(".total strong")).to_contain_text("30")
    expect(order.locator(".timeline li .event")).to_have_text(
        ["placed", "lines_changed", "shipping_address_changed"]
    )
    assert resolved_by(page) == ["push"]
    assert page.evaluate("window.Live.stats.polls") == 0
    page.screenshot(path=output_dir / "browser-order-changed.png", full_page=True)
