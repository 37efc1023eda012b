"""A catalogue of 20,000 products in Chromium: search, pages, live stock.

The 20,000 rows go straight into the catalogue read model (one INSERT ...
SELECT over generate_series, well under a second): these tests are about the
shop reading a large catalogue, and loading them through the import command
and the projection would spend most of a minute on what
tests/commands_app/test_handlers.py and the import browser test already cover.
The product whose stock is pushed is registered and restocked for real,
through commands, the worker and the catalogue projection.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from playwright.sync_api import expect

from tests.support.commands import register_product, run
from tests.support.processes import wait_until

from .conftest import sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

PRODUCTS = 20_000
PAGE_SIZE = 24


def load_catalogue(count: int = PRODUCTS) -> None:
    with connections["read"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO read_products "
            "(id, sku, name, price_cents, available, updated_at, position) "
            "SELECT md5('bulk' || i)::uuid, 'BULK-' || lpad(i::text, 5, '0'), "
            "'Bulk item ' || lpad(i::text, 5, '0'), 100 + i, 1 + i %% 50, now(), 0 "
            "FROM generate_series(1, %s) AS i",
            [count],
        )
        cursor.execute("ANALYZE read_products")


def names(page: Any, selector: str = "#products .product h3") -> list[str]:
    return page.locator(selector).all_inner_texts()


def test_the_shop_searches_and_pages_through_20000_products(
    web, worker, alice, browser, output_dir: Path
):
    load_catalogue()
    page = sign_in(browser, web, "alice")

    expect(page.locator("#products .product")).to_have_count(PAGE_SIZE)
    assert names(page)[0] == "Bulk item 00001"
    expect(page.locator("#products-prev")).to_be_disabled()
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#products-page")).to_have_text("Page 2")
    expect(page.locator("#products .product h3").first).to_have_text(
        f"Bulk item {PAGE_SIZE + 1:05d}"
    )
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#products .product h3").first).to_have_text(
        f"Bulk item {2 * PAGE_SIZE + 1:05d}"
    )
    page.get_by_role("button", name="Previous page").click()
    expect(page.locator("#products .product h3").first).to_have_text(
        f"Bulk item {PAGE_SIZE + 1:05d}"
    )

    # By name: a part of it, any case; back to the first page of the results.
    page.get_by_label("Search products").fill("ITEM 1999")
    expect(page.locator("#products .product")).to_have_count(10)
    expect(page.locator("#products-page")).to_contain_text("Page 1")
    assert names(page) == [f"Bulk item {19990 + i}" for i in range(10)]
    expect(page.locator("#products-next")).to_be_disabled()
    # By SKU.
    page.get_by_label("Search products").fill("bulk-12345")
    expect(page.locator("#products .product")).to_have_count(1)
    expect(page.locator("#products .product")).to_have_attribute(
        "data-sku", "BULK-12345"
    )
    page.get_by_label("Search products").fill("no such thing")
    expect(page.locator("#products")).to_contain_text("No product matches")
    # A search with more than a page of results pages too.
    page.get_by_label("Search products").fill("item 1")
    expect(page.locator("#products .product")).to_have_count(PAGE_SIZE)
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#products-page")).to_contain_text("Page 2")
    expect(page.locator("#products .product")).to_have_count(PAGE_SIZE)
    page.screenshot(path=output_dir / "browser-e-catalogue-search.png", full_page=True)


def test_the_restock_list_searches_and_pages_through_20000_products(
    web, worker, staff, browser
):
    load_catalogue()
    page = sign_in(browser, web, "staff")
    page.get_by_role("link", name="Catalogue").click()
    rows = page.locator("#restock-list li")
    expect(rows).to_have_count(PAGE_SIZE)
    page.get_by_role("button", name="Next page").last.click()
    expect(page.locator("#restock-page")).to_have_text("Page 2")
    expect(rows.first).to_contain_text(f"Bulk item {PAGE_SIZE + 1:05d}")
    page.get_by_label("Search products to restock").fill("BULK-04242")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("BULK-04242")
    expect(page.locator("#restock-page")).to_contain_text("Page 1")


def test_stock_changes_reach_the_shop_pushed_without_a_poll(
    web, worker, staff_api, alice, browser
):
    load_catalogue(2_000)
    product_id = register_product(staff_api, sku="LIVE-WEB", stock=5)
    # Shown once the catalogue has it (not the subject here).
    wait_until(
        lambda: staff_api.get("/api/products/?sku=LIVE-WEB").json()["results"],
        timeout=30,
    )
    page = sign_in(browser, web, "alice")
    page.get_by_label("Search products").fill("LIVE-WEB")
    card = page.locator(f'[data-product-id="{product_id}"]')
    expect(card.locator(".available")).to_have_text("5")
    reads: list[str] = []
    page.on(
        "request",
        lambda request: (
            reads.append(request.url) if "/api/products/" in request.url else None
        ),
    )

    status = run(
        staff_api, "restock-product", {"product_id": product_id, "quantity": 7}
    )
    assert status["status"] == "succeeded", status

    # Polls are a minute apart while the socket is live: this is the push.
    expect(card.locator(".available")).to_have_text("12", timeout=15_000)
    assert reads == [], reads
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    assert re.fullmatch(r"\d+", card.locator(".available").inner_text())
