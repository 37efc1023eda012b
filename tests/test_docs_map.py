"""docs/architecture.md's Map names every package of the tree, and only those.

A package added (or removed) without its row in the Map fails here, as does a
package the import contracts do not know (`root_packages` in pyproject.toml).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

pytestmark = [pytest.mark.unit]

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
# Folders at the top that are not Python packages of the project.
NOT_PACKAGES = {"docs", "deploy", "scripts", "tests", "test-output", "node_modules"}


def top_level_packages() -> set[str]:
    return {
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if path.parent.name not in NOT_PACKAGES and not path.parent.name.startswith(".")
    } | {path.parent.name for path in ROOT.glob("*/apps.py")}


def map_rows() -> set[str]:
    text = ARCHITECTURE.read_text()
    section = text.split("## Map", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)/` \|", section, flags=re.MULTILINE))


def test_the_map_has_a_row_for_every_package_and_no_other() -> None:
    assert map_rows() - {"tests"} == top_level_packages()


def test_the_import_contracts_know_every_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    roots = set(config["tool"]["importlinter"]["root_packages"])
    assert roots == top_level_packages()
