"""The command registry is the one description of each command.

Every `CommandSpec` names a typed command class (a domain dataclass) built from
the stored JSON payload, a handler in `handlers.py` (or a runner of its own when
long-running), and an endpoint; no other module compares a command's name
string; docs/api.md's command table says what the registry says.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from django.urls import resolve, reverse

from commands_app import handlers
from commands_app.api import SubmitCommandApi
from commands_app.domain.commands import (
    CancelOrder,
    ImportProducts,
    PayOrder,
    PlaceOrder,
    RegisterProduct,
    RestockProduct,
    ShipOrder,
    UpdateOrder,
)
from commands_app.domain.customer import ForgetCustomer
from commands_app.registry import (
    CANCEL_ORDER,
    COMMANDS,
    FORGET_CUSTOMER,
    IMPORT_PRODUCTS,
    PAY_ORDER,
    PLACE_ORDER,
    REGISTER_PRODUCT,
    RESTOCK_PRODUCT,
    SHIP_ORDER,
    UPDATE_ORDER,
    CommandSpec,
    Who,
)

pytestmark = [pytest.mark.unit]

ROOT = Path(__file__).resolve().parents[2]
# The production packages: import-linter's root packages but the benchmarks.
PRODUCTION = [
    package
    for package in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
        "importlinter"
    ]["root_packages"]
    if package != "bench"
]
CONTEXT = handlers.Context(command_id=uuid4(), user_id=7, is_staff=False)
ORDER_ID = str(uuid4())
PRODUCT_ID = str(uuid4())
LINES = [{"product_id": PRODUCT_ID, "quantity": 2}]
ADDRESS = {
    "name": "Ada",
    "line1": "1 Rue",
    "city": "Paris",
    "postal_code": "75001",
    "country": "FR",
}
CARD = {"token": "tok_1", "last4": "4242", "exp_month": 12, "exp_year": 2030}
ITEM = {"sku": "SKU-1", "name": "Pen", "price_cents": 100, "initial_stock": 3}

# A stored payload of each command (as the API stores it: JSON, UUIDs as
# strings, the card tokenised) and the typed command it builds.
EXAMPLES: list[tuple[CommandSpec[Any], type, dict[str, Any]]] = [
    (
        REGISTER_PRODUCT,
        RegisterProduct,
        {"product_id": PRODUCT_ID, **ITEM},
    ),
    (RESTOCK_PRODUCT, RestockProduct, {"product_id": PRODUCT_ID, "quantity": 5}),
    (IMPORT_PRODUCTS, ImportProducts, {"products": [ITEM]}),
    (
        PLACE_ORDER,
        PlaceOrder,
        {"order_id": ORDER_ID, "lines": LINES, "shipping_address": ADDRESS},
    ),
    (PAY_ORDER, PayOrder, {"order_id": ORDER_ID, "card": CARD}),
    (CANCEL_ORDER, CancelOrder, {"order_id": ORDER_ID, "reason": "late"}),
    (SHIP_ORDER, ShipOrder, {"order_id": ORDER_ID}),
    (FORGET_CUSTOMER, ForgetCustomer, {"customer_id": 9}),
    (UPDATE_ORDER, UpdateOrder, {"order_id": ORDER_ID, "lines": LINES}),
]


def test_every_command_has_an_example() -> None:
    assert sorted(spec.name for spec, _, _ in EXAMPLES) == sorted(COMMANDS)


@pytest.mark.parametrize(
    ("spec", "command_class", "payload"),
    EXAMPLES,
    ids=[spec.name for spec, _, _ in EXAMPLES],
)
def test_spec_builds_its_typed_command(
    spec: CommandSpec[Any], command_class: type, payload: dict[str, Any]
) -> None:
    assert spec.command is command_class
    assert dataclasses.is_dataclass(command_class)
    assert command_class.__module__.startswith("commands_app.domain.")
    command = spec.command_from(payload, CONTEXT)
    assert isinstance(command, command_class)
    for field in ("order_id", "product_id"):
        if field in payload:
            assert getattr(command, field) == UUID(payload[field])


@pytest.mark.parametrize("spec", COMMANDS.values(), ids=list(COMMANDS))
def test_spec_names_its_handler_and_endpoint(spec: CommandSpec[Any]) -> None:
    if spec.long_running:
        # Run in chunks by imports.run_import on its own queue.
        assert spec.handler is None
        assert spec.queue == "imports"
    else:
        assert spec.handler is not None
        assert getattr(handlers, spec.handler.__name__) is spec.handler
        assert spec.queue == "commands"
    assert getattr(handlers, spec.build.__name__) is spec.build
    url = reverse(f"command-{spec.name}")
    assert url == f"/api/commands/{spec.name}/"
    match = resolve(url)
    assert match.func.cls is SubmitCommandApi  # type: ignore[attr-defined]
    assert match.func.initkwargs == {"spec": spec}  # type: ignore[attr-defined]
    # OPTIONS names the command's view and summary, as a class per command did.
    view = SubmitCommandApi(spec=spec)
    assert view.get_view_name().replace(" ", "").lower() == (
        spec.name.replace("-", "") + "api"
    )
    assert view.get_view_description() == spec.summary


def test_only_import_products_is_long_running() -> None:
    assert [spec.name for spec in COMMANDS.values() if spec.long_running] == [
        IMPORT_PRODUCTS.name
    ]
    assert [spec.name for spec in COMMANDS.values() if spec.progress_pushes] == [
        IMPORT_PRODUCTS.name
    ]


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(
            node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
        ):
            body = node.body
            if body and isinstance(body[0], ast.Expr):
                ids.add(id(body[0].value))
    return ids


def test_no_module_but_the_registry_spells_a_command_name() -> None:
    """A name compared, looked up or filtered on is a special case: ask the spec.

    Prose (messages, docstrings) may name a command; a string that *is* a
    command's name may appear only in registry.py (and in migrations, which are
    history).
    """
    names = set(COMMANDS)
    found = []
    for package in PRODUCTION:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative == "commands_app/registry.py" or "/migrations/" in relative:
                continue
            tree = ast.parse(path.read_text(), relative)
            docstrings = _docstrings(tree)
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and id(node) not in docstrings
                    and node.value in names
                ):
                    found.append(f"{relative}:{node.lineno} {node.value!r}")
    assert found == []


WHO_IN_DOCS = {
    Who.STAFF: "staff",
    Who.CUSTOMER: "any signed-in user",
    Who.ORDER_OWNER: "the order's customer",
    Who.ORDER_OWNER_OR_STAFF: "the order's customer, staff",
}
ROW = re.compile(r"^\| `([a-z-]+)` \| (.*) \| (.*) \| (.*) \|$")


def test_docs_command_table_matches_the_registry() -> None:
    """docs/api.md's table: one row per command, its body, who and refusals."""
    rows = {}
    for line in (ROOT / "docs" / "api.md").read_text().splitlines():
        match = ROW.match(line)
        if match and match.group(1) in COMMANDS:
            rows[match.group(1)] = match.groups()[1:]
    assert sorted(rows) == sorted(COMMANDS)
    for name, (body, who, refusals) in rows.items():
        spec = COMMANDS[name]
        assert who == WHO_IN_DOCS[spec.who], name
        assert tuple(re.findall(r"`([a-z_]+)`", refusals)) == spec.refusals, name
        fields = spec.input().fields
        documented = {
            match.group(1): bool(match.group(2))
            for match in re.finditer(r"`([a-z_]+)(\?)?[:`]", body)
        }
        assert set(documented) == set(fields), name
        for field, optional in documented.items():
            assert optional == (not fields[field].required), (name, field)
