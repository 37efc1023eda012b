"""The tier rules that tests/conftest.py enforces at collection."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
import redis

from tests.support.tiers import TIERS, item_problems, module_tier

pytestmark = [pytest.mark.unit]

TESTS = Path(__file__).resolve().parent
TIER_MARK = re.compile(r"pytest\.mark\.(" + "|".join(TIERS) + r")\b")


def module_with(pytestmark: object = None) -> ModuleType:
    module = ModuleType("tests.example")
    if pytestmark is not None:
        module.pytestmark = pytestmark  # type: ignore[attr-defined]
    return module


@pytest.mark.parametrize(
    "declared",
    [pytest.mark.unit, [pytest.mark.e2e, pytest.mark.worker], (pytest.mark.unit,)],
)
def test_a_module_with_one_tier_mark_has_that_tier(declared: object) -> None:
    assert module_tier(module_with(declared)) in TIERS


@pytest.mark.parametrize(
    "declared",
    [
        None,
        pytest.mark.django_db,
        [pytest.mark.worker],
        [pytest.mark.unit, pytest.mark.integration],
    ],
)
def test_a_module_without_exactly_one_tier_is_refused(declared: object) -> None:
    with pytest.raises(ValueError, match="exactly one of unit, integration, e2e"):
        module_tier(module_with(declared))


@pytest.mark.parametrize("fixture", ["db", "transactional_db", "worker", "web"])
def test_a_unit_test_may_not_use_a_service(fixture: str) -> None:
    assert item_problems("unit", [fixture, "tmp_path"], ["unit", "worker"])


def test_a_unit_test_may_not_carry_the_django_db_mark() -> None:
    assert item_problems("unit", ["tmp_path"], ["unit", "django_db"])


@pytest.mark.parametrize("fixture", ["web", "stack", "browser"])
def test_an_integration_test_may_not_start_the_web_server_or_the_stack(
    fixture: str,
) -> None:
    problems = item_problems("integration", [fixture], ["integration", "browser"])
    assert any("mark the module e2e" in problem for problem in problems)


@pytest.mark.parametrize(
    ("fixture", "mark"),
    [("worker", "worker"), ("stack", "worker"), ("browser", "browser")],
)
def test_a_test_using_workers_or_chromium_needs_that_mark(
    fixture: str, mark: str
) -> None:
    assert item_problems("e2e", [fixture], ["e2e"])
    assert not item_problems("e2e", [fixture], ["e2e", mark])


def test_a_tier_mark_on_a_test_itself_is_refused() -> None:
    assert item_problems("integration", ["db"], ["unit", "integration", "django_db"])


def test_tests_in_order_get_no_complaint() -> None:
    assert not item_problems("unit", ["tmp_path", "monkeypatch"], ["unit"])
    assert not item_problems("integration", ["db", "worker"], ["integration", "worker"])
    assert not item_problems("e2e", ["web", "db"], ["e2e", "django_db"])


def test_every_test_module_of_the_tree_names_its_tier_at_its_top() -> None:
    """Cheaper to read than the collection check, and says which files."""
    untiered = [
        str(path.relative_to(TESTS))
        for path in sorted(TESTS.rglob("test_*.py"))
        if not TIER_MARK.search(path.read_text())
    ]
    assert untiered == []


def test_a_unit_test_cannot_reach_redis_or_postgresql() -> None:
    """tests/conftest.py refuses every connection to a unit test, at once."""
    with pytest.raises(RuntimeError, match="unit test reached"):
        redis.Redis.from_url("redis://127.0.0.1:6379/15").ping()
    with pytest.raises(RuntimeError, match="unit test reached"):
        psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres")
