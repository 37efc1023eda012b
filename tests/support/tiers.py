"""The test tiers, and the rule that every test module declares exactly one.

A module says its tier at its top, `pytestmark = [pytest.mark.unit, ...]`:

- `unit`: plain Python (domain rules, pure functions, files of the repository);
  no database, no Redis, no process. `make test-fast` runs this tier alone.
- `integration`: the real PostgreSQL, Redis and channel layer in the pytest
  process, and Celery worker processes (the `worker` fixture).
- `e2e`: the web server (or the whole stack) as processes, talked to over HTTP
  and WebSocket, or driven in Chromium.

Besides the tier, `worker` marks a module whose tests start Celery worker
processes and `browser` one that drives Chromium.

tests/conftest.py checks every collected test against these rules and stops the
run before any test runs if one breaks them, so a new module without a tier (or
a unit test that asks for a database) is caught at collection.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import Any

import pytest

TIERS = ("unit", "integration", "e2e")

# Fixtures that reach a database, Redis or a process: never in a unit test.
SERVICE_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_setup",
        "live_server",
        "worker",
        "web",
        "web2",
        "stack",
        "browser",
    }
)
# Fixtures that start the web server or the whole stack: end-to-end only.
E2E_FIXTURES = frozenset({"web", "web2", "stack", "browser", "live_server"})
# Fixtures that need the marker of the same name (on the module or the test).
MARKED_FIXTURES = {"worker": "worker", "stack": "worker", "browser": "browser"}


def module_marks(module: ModuleType) -> list[pytest.Mark]:
    """Return the marks of a module's `pytestmark`, as a list."""
    declared: Any = getattr(module, "pytestmark", [])
    if not isinstance(declared, list | tuple):
        declared = [declared]
    return [getattr(mark, "mark", mark) for mark in declared]


def module_tier(module: ModuleType) -> str:
    """Return the tier a module declares; raise ValueError unless exactly one."""
    tiers = [mark.name for mark in module_marks(module) if mark.name in TIERS]
    if len(tiers) != 1:
        raise ValueError(
            f"declares {len(tiers)} tiers {tiers}: put exactly one of "
            f"{', '.join(TIERS)} in its module-level pytestmark "
            "(tests/support/tiers.py says which)"
        )
    return tiers[0]


def item_problems(
    tier: str, fixtures: Iterable[str], marks: Iterable[str]
) -> list[str]:
    """Return what is wrong with one test of a module of `tier`."""
    used = set(fixtures)
    names = list(marks)
    problems = []
    if [name for name in names if name in TIERS] != [tier]:
        problems.append(
            "carries a tier mark of its own: the tier belongs to the module"
        )
    if tier == "unit":
        services = sorted(used & SERVICE_FIXTURES)
        if services or "django_db" in names:
            problems.append(
                "is a unit test but uses "
                + ", ".join(services or ["the django_db mark"])
                + ": mark the module integration (or e2e)"
            )
    elif tier == "integration":
        e2e = sorted(used & E2E_FIXTURES)
        if e2e:
            problems.append(
                f"uses {', '.join(e2e)}: mark the module e2e, not integration"
            )
    for fixture, mark in sorted(MARKED_FIXTURES.items()):
        if fixture in used and mark not in names:
            problems.append(f"uses the {fixture} fixture without the {mark} mark")
    return problems


def collection_errors(items: Iterable[pytest.Item]) -> list[str]:
    """Return one line per module or test that breaks the tier rules."""
    errors: list[str] = []
    tiers: dict[str, str | None] = {}
    for item in items:
        module = getattr(item, "module", None)
        if module is None:
            continue
        name = item.nodeid.split("::")[0]
        if name not in tiers:
            try:
                tiers[name] = module_tier(module)
            except ValueError as error:
                tiers[name] = None
                errors.append(f"{name} {error}")
        tier = tiers[name]
        if tier is None:
            continue
        marks = [mark.name for mark in item.iter_markers()]
        fixtures = getattr(item, "fixturenames", ())
        errors += [
            f"{item.nodeid} {problem}"
            for problem in item_problems(tier, fixtures, marks)
        ]
    return errors
