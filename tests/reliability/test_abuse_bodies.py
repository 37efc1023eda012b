"""One request, bounded work: huge lists, many errors and staff bodies from customers.

A body inside the size limit can still hold hundreds of thousands of list items.
Each case is refused with the error body, stores nothing, and answers in a
bounded size: a list's length is checked before its items, an answer holds at
most 20 error messages, and a staff command checks the role before the body is
parsed. The Django test client is enough: nothing reaches a worker.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import pytest
from rest_framework import serializers

from commands_app.errors import MAX_ERRORS, OMITTED_KEY, cap_errors
from commands_app.models import CommandRecord
from commands_app.registry import COMMANDS
from tests.support.commands import ADDRESS

pytestmark = [pytest.mark.integration, pytest.mark.django_db(databases="__all__")]

BAD_LINE = {"product_id": "x", "quantity": 0}
BAD_PRODUCT = {"sku": "", "name": "", "price_cents": -1, "initial_stock": -1}


def post(client: Any, name: str, raw: str | bytes) -> Any:
    return client.post(
        f"/api/commands/{name}/", data=raw, content_type="application/json"
    )


def compact(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


def messages(details: Any) -> int:
    """Count the error messages in a `details` tree (the omitted count aside)."""
    if isinstance(details, dict):
        return sum(messages(v) for k, v in details.items() if k != OMITTED_KEY)
    if isinstance(details, list):
        return sum(messages(item) for item in details)
    return 1


def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == code, body
    assert CommandRecord.objects.count() == 0
    return body


def test_200000_invalid_lines_are_refused_on_the_list_length_alone(alice_api):
    body = compact({"lines": [BAD_LINE] * 200_000, "shipping_address": ADDRESS})
    assert len(body) < 8 * 1024 * 1024
    response = post(alice_api, "place-order", body)
    details = refused(response, 400, "validation_error")["details"]
    assert details == {"lines": ["Ensure this field has no more than 100 elements."]}
    assert len(response.content) < 1_000


def list_fields(
    serializer: serializers.Serializer, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], serializers.ListField]]:
    """Return every ListField of a command's input, nested ones included."""
    found = []
    for name, field in serializer.fields.items():
        if isinstance(field, serializers.ListField):
            found.append(((*path, name), field))
            child = field.child
            if isinstance(child, serializers.Serializer):
                found += list_fields(child, (*path, name, "0"))
        elif isinstance(field, serializers.Serializer):
            found += list_fields(field, (*path, name))
    return found


LIST_FIELDS = [
    (name, path, field)
    for name, spec in COMMANDS.items()
    for path, field in list_fields(spec.input())
]


def test_the_commands_have_list_fields_to_check() -> None:
    assert {(name, path) for name, path, _ in LIST_FIELDS} >= {
        ("place-order", ("lines",)),
        ("import-products", ("products",)),
    }


@pytest.mark.parametrize(
    ("name", "path", "field"),
    LIST_FIELDS,
    ids=[f"{name}:{'.'.join(path)}" for name, path, _ in LIST_FIELDS],
)
def test_every_list_of_every_command_is_bounded_and_checked_before_its_items(
    name: str, path: tuple[str, ...], field: serializers.ListField
) -> None:
    assert field.max_length is not None, f"{name}: {path} has no max_length"
    too_many: Any = ["not an item"] * (field.max_length + 1)
    for key in reversed(path):
        too_many = [too_many] if key == "0" else {key: too_many}
    serializer = COMMANDS[name].input(data=too_many)
    assert not serializer.is_valid()
    errors: Any = serializer.errors
    for key in path:
        errors = errors[0] if key == "0" else errors[key]
        if key == "0" and isinstance(errors, dict):
            errors = errors.get(0, errors)
    assert [str(e) for e in errors] == [
        f"Ensure this field has no more than {field.max_length} elements."
    ]


def test_a_list_that_is_not_a_bounded_items_field_is_refused_at_definition() -> None:
    from commands_app.serializers import ItemsField, StrictSerializer

    with pytest.raises(TypeError, match="ItemsField"):
        type(
            "Unbounded",
            (StrictSerializer,),
            {"tags": serializers.ListField(child=serializers.CharField())},
        )
    with pytest.raises(TypeError, match="max_length"):
        type(
            "NoMax",
            (StrictSerializer,),
            {"tags": ItemsField(child=serializers.CharField())},
        )


def test_an_answer_holds_at_most_20_errors_and_counts_the_rest(alice_api):
    body = json.dumps({"lines": [BAD_LINE] * 100, "shipping_address": {}})
    details = refused(post(alice_api, "place-order", body), 400, "validation_error")[
        "details"
    ]
    assert messages(details) == MAX_ERRORS
    # Lines stop being checked at the 21st invalid one (2 errors each), then
    # the 5 missing address fields.
    assert details[OMITTED_KEY] == (MAX_ERRORS + 1) * 2 + 5 - MAX_ERRORS
    assert details["lines"]["0"] == {
        "product_id": ["Must be a valid UUID."],
        "quantity": ["Ensure this value is greater than or equal to 1."],
    }


def test_a_staff_import_of_50000_invalid_products_stops_at_the_21st(
    staff_api, monkeypatch
):
    from commands_app.serializers import ImportItemInput

    checked: list[Any] = []
    validate = ImportItemInput.run_validation

    def counting(self: Any, data: Any = None) -> Any:
        checked.append(data)
        return validate(self, data)

    monkeypatch.setattr(ImportItemInput, "run_validation", counting)
    body = json.dumps({"products": [BAD_PRODUCT] * 50_000})
    response = post(staff_api, "import-products", body)
    details = refused(response, 400, "validation_error")["details"]
    assert len(checked) == MAX_ERRORS + 1
    assert messages(details) == MAX_ERRORS
    assert details[OMITTED_KEY] == (MAX_ERRORS + 1) * 4 - MAX_ERRORS
    assert len(response.content) < 5_000


def test_half_a_million_unknown_fields_answer_20_errors(alice_api):
    body = compact({f"f{i}": 1 for i in range(500_000)})
    response = post(alice_api, "place-order", body)
    details = refused(response, 400, "validation_error")["details"]
    assert messages(details) == MAX_ERRORS
    assert details[OMITTED_KEY] == 500_000 - MAX_ERRORS


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"products": [BAD_PRODUCT] * 50_000}),
        '{"products": [',
        b"\xff\xfe not even utf-8",
    ],
    ids=["50000 invalid items", "truncated JSON", "not UTF-8"],
)
def test_a_customer_body_for_a_staff_command_is_refused_before_it_is_parsed(
    alice_api, raw
):
    refused(post(alice_api, "import-products", raw), 403, "permission_denied")


def test_a_customer_staff_command_is_refused_without_reading_the_body(
    alice_api, monkeypatch
):
    def parse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the body was parsed")

    monkeypatch.setattr("commands_app.parsers.StrictJSONParser.parse", parse)
    for name in ("register-product", "restock-product", "ship-order"):
        body = json.dumps({"product_id": str(uuid4())})
        refused(post(alice_api, name, body), 403, "permission_denied")


def test_capping_keeps_the_first_messages_in_body_order() -> None:
    detail = {"a": ["1", "2"], "b": {"0": {"x": ["3"]}, "5": {"y": ["4", "5"]}}}
    assert cap_errors(detail, limit=3) == {
        "a": ["1", "2"],
        "b": {"0": {"x": ["3"]}},
        OMITTED_KEY: 2,
    }
    assert cap_errors(detail, limit=5) == detail
    assert cap_errors(["1", "2", "3"], limit=2) == {
        "non_field_errors": ["1", "2"],
        OMITTED_KEY: 1,
    }
