"""docs/operations.md documents every variable and every metric. Plain files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.unit]

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()


def test_every_variable_of_env_example_is_in_the_configuration_reference() -> None:
    names = re.findall(
        r"^#\s*([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), flags=re.M
    )
    assert names
    assert [name for name in names if f"| `{name}` |" not in OPERATIONS] == []


def test_every_metric_the_code_defines_is_explained() -> None:
    sources = [
        ROOT / "observability" / "metrics.py",
        ROOT / "projections" / "monitoring.py",
    ]
    names = {
        n for path in sources for n in re.findall(r'"(cqrs_[a-z_]+)"', path.read_text())
    }
    assert names
    assert {name for name in names if f"| `{name}` |" not in OPERATIONS} == set()
