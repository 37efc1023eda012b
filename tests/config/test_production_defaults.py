"""Without DJANGO_SETTINGS_MODULE every entry point runs production settings.

They refuse to start without a secret of their own and never run DEBUG.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess

import pytest
from django.test import Client

from tests.support import processes

pytestmark = [pytest.mark.integration]

ENTRY_POINTS = {
    "manage.py": ["manage.py", "check"],
    "wsgi": ["-c", "import config.wsgi"],
    "asgi": ["-c", "import config.asgi"],
    "celery": ["-m", "celery", "-A", "config.celery_app", "report"],
}


def run_without_settings(
    argv: list[str], **extra: str
) -> subprocess.CompletedProcess[str]:
    env = processes.test_env(**extra)
    env.pop("DJANGO_SETTINGS_MODULE")
    if "DJANGO_SECRET_KEY" not in extra:
        env.pop("DJANGO_SECRET_KEY", None)
    return subprocess.run(
        [str(processes.BIN / "python"), *argv],
        cwd=processes.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(autouse=True)
def _no_secret_in_dot_env() -> None:
    dot_env = processes.ROOT / ".env"
    if dot_env.exists() and "DJANGO_SECRET_KEY=" in dot_env.read_text():
        pytest.skip(".env sets DJANGO_SECRET_KEY")


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_an_entry_point_without_settings_refuses_to_start_without_a_secret(
    entry: str,
):
    out = run_without_settings(ENTRY_POINTS[entry])
    assert out.returncode != 0, out.stdout + out.stderr
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in out.stderr


def test_the_published_development_key_is_refused_too():
    out = run_without_settings(
        ENTRY_POINTS["wsgi"], DJANGO_SECRET_KEY="dev-insecure-change-me"
    )
    assert out.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in out.stderr


def test_with_a_secret_the_default_is_production_without_debug():
    out = run_without_settings(
        [
            "-c",
            "import config.wsgi; from django.conf import settings; "
            "print(settings.SETTINGS_MODULE, settings.DEBUG)",
        ],
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        PII_MASTER_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        DJANGO_DEBUG="true",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["config.settings.production", "False"]


@pytest.mark.parametrize("key", ["", "ZGV2LW9ubHktcGlpLW1hc3Rlci1rZXktMzItYnl0ZXM="])
def test_production_refuses_to_start_without_a_master_key_of_its_own(key: str):
    out = run_without_settings(
        ENTRY_POINTS["wsgi"],
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        PII_MASTER_KEY=key,
    )
    assert out.returncode != 0
    assert "PII_MASTER_KEY is not set" in out.stderr
    assert "ZGV2LW9ub" not in out.stderr


def test_the_test_run_names_its_settings():
    assert os.environ["DJANGO_SETTINGS_MODULE"] == "config.settings.test"
    assert processes.test_env()["DJANGO_SETTINGS_MODULE"] == "config.settings.test"


@pytest.mark.django_db
@pytest.mark.parametrize(("debug", "shown"), [(False, False), (True, True)])
def test_the_login_page_shows_the_demo_passwords_only_when_debug(
    settings, debug: bool, shown: bool
):
    settings.DEBUG = debug
    page = Client().get("/login/").content.decode()
    assert ("alice-pass-123" in page) is shown
    assert ("admin-pass-123" in page) is shown
