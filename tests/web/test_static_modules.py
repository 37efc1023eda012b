"""The browser app's JavaScript: plain ES modules served as they are written.

No bundler, no npm and no CDN at run time: app.html loads one module,
`web/app.js`, and everything else is reached by relative imports of files that
exist under `web/static/web/`. Each module is small, named for its concern and
says what it holds in a comment header.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

STATIC = Path(__file__).resolve().parents[2] / "web" / "static" / "web"
TEMPLATE = STATIC.parents[1] / "templates" / "web" / "app.html"
IMPORT = re.compile(r"^\s*(?:import|export)\b[^;\"']*?from\s+[\"']([^\"']+)[\"']", re.M)
BARE_IMPORT = re.compile(r"^\s*import\s+[\"']([^\"']+)[\"']", re.M)
DYNAMIC_IMPORT = re.compile(r"(?<![\w$.])import\(")
MODULE_LINES = 200


def modules() -> list[Path]:
    return sorted(STATIC.rglob("*.js"))


def imports_of(path: Path) -> list[str]:
    text = path.read_text()
    return [*IMPORT.findall(text), *BARE_IMPORT.findall(text)]


def test_the_page_loads_one_module_and_no_classic_script():
    scripts = re.findall(r"<script\b[^>]*>", TEMPLATE.read_text())
    assert scripts == ["""<script type="module" src="{% static 'web/app.js' %}">"""]


def test_every_import_is_a_relative_path_to_a_module_that_exists():
    assert modules()
    for path in modules():
        assert not DYNAMIC_IMPORT.search(path.read_text()), path
        for specifier in imports_of(path):
            assert specifier.startswith(("./", "../")), (path, specifier)
            assert specifier.endswith(".js"), (path, specifier)
            target = (path.parent / specifier).resolve()
            assert target.is_file(), (path, specifier)
            assert STATIC in target.parents, (path, specifier)


def test_every_module_is_reached_from_the_entry_module():
    reached: set[Path] = set()
    todo = [STATIC / "app.js"]
    while todo:
        path = todo.pop()
        if path in reached:
            continue
        reached.add(path)
        todo += [(path.parent / s).resolve() for s in imports_of(path)]
    assert reached == {path.resolve() for path in modules()}


def test_every_view_module_is_small_and_opens_with_a_comment_header():
    views = sorted((STATIC / "app").glob("*.js"))
    assert len(views) >= 10
    for path in [STATIC / "app.js", STATIC / "live.js", *views]:
        text = path.read_text()
        assert text.startswith("/* "), path
        if path.parent.name == "app":
            assert len(text.splitlines()) <= MODULE_LINES, path
