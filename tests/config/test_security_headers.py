"""Security headers: a CSP without inline script, nosniff, Referrer-Policy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.conftest import client_for, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"


def csp(response: Any) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return {
        part.split()[0]: part.split(" ", 1)[1] if " " in part else ""
        for part in (p.strip() for p in policy.split(";"))
        if part
    }


def assert_secure(response: Any) -> None:
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    policy = csp(response)
    assert policy["script-src"] == "'self'"
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"


def test_the_browser_app_and_login_page_send_the_headers(alice):
    browser = Client()
    assert_secure(browser.get("/login/"))
    browser.force_login(alice)
    page = browser.get("/")
    assert page.status_code == 200
    assert_secure(page)


def test_the_api_and_the_admin_send_them_too(alice):
    assert_secure(client_for(alice).get("/api/products/"))
    assert_secure(Client().get("/admin/login/"))


def test_the_admin_still_works_under_the_policy():
    admin = make_user("root", staff=True)
    admin.is_superuser = True
    admin.save()
    browser = Client()
    browser.force_login(admin)
    for path in (
        "/admin/",
        "/admin/auth/user/",
        f"/admin/auth/user/{admin.pk}/change/",
    ):
        response = browser.get(path)
        assert response.status_code == 200, path
        assert_secure(response)
        # Scripts only from files: no inline <script> body the policy would block.
        inline = re.findall(
            r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", response.content.decode()
        )
        assert [tag for tag in inline if "application/json" not in tag] == [], path


def test_no_template_of_the_browser_app_has_inline_script_or_style():
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template
        assert "<style" not in text, template
        assert not re.search(r"\sstyle=", text), template
        assert not re.search(r"\son[a-z]+=", text), template
