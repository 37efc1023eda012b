"""The browser app's pages: sign-in, the app shell and its own assets only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

WEB = Path(__file__).resolve().parents[2] / "web"

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_an_anonymous_visitor_is_sent_to_the_login_page():
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_signing_in_opens_the_shop_with_a_csrf_cookie(alice):
    client = Client(enforce_csrf_checks=True)
    client.get("/login/")
    response = client.post(
        "/login/",
        {
            "username": "alice",
            "password": "alice-pass-123",
            "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert "csrftoken" in page.cookies
    html = page.content.decode()
    assert 'id="shop"' in html
    assert 'id="dashboard"' not in html  # staff sections are not even rendered


def test_staff_get_the_back_office_sections(staff):
    client = Client()
    client.force_login(staff)
    html = client.get("/").content.decode()
    for section in ("catalogue", "import", "shipping", "dashboard"):
        assert f'id="{section}"' in html


def test_every_asset_is_served_by_the_project_and_nothing_comes_from_elsewhere():
    sources = [*WEB.glob("templates/**/*.html"), *WEB.glob("static/**/*.*")]
    assert sources
    for path in sources:
        text = path.read_text()
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", text), path
        assert "@import" not in text, path
        assert "url(http" not in text, path
    for name in ("web/app.js", "web/live.js", "web/app.css"):
        response = Client().get(f"/static/{name}")
        assert response.status_code == 200, name
    # app.js imports the others as ES modules: each is served, as JavaScript
    # (a browser refuses a module of any other type).
    static = WEB / "static"
    scripts = sorted(static.rglob("*.js"))
    assert len(scripts) > 2
    for path in scripts:
        name = path.relative_to(static).as_posix()
        response = Client().get(f"/static/{name}")
        assert response.status_code == 200, name
        assert "javascript" in response["Content-Type"], name


@pytest.mark.django_db(databases="__all__")
def test_staff_may_forget_a_customer_and_customers_may_download_their_data(
    staff, alice
):
    client = Client()
    client.force_login(staff)
    html = client.get("/").content.decode()
    assert 'id="forget"' in html
    assert 'href="#privacy"' in html
    client.force_login(alice)
    html = client.get("/").content.decode()
    assert 'id="forget"' not in html
    assert 'id="my-data" href="/api/me/data/"' in html
    # The link works with the browser's session.
    export = client.get("/api/me/data/")
    assert export.status_code == 200
    assert export.json()["profile"]["username"] == "alice"
