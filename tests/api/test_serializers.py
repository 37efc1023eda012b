"""StrictSerializer's own field copies: the same answers as DRF's deep copies."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
from rest_framework import serializers

from api.serializers import StrictSerializer
from commands_app.serializers import (
    ImportProductsInput,
    PayOrderInput,
    PlaceOrderInput,
    UpdateOrderInput,
)

pytestmark = [pytest.mark.unit]

PRODUCT = "0b6f9c44-3a59-4c4b-9a64-8d7a3f1e2b10"
ADDRESS = {
    "name": "  Ada  ",
    "line1": "1 Rue de la Paix",
    "city": "Paris",
    "postal_code": "75002",
    "country": "FR",
}
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}

BODIES: list[tuple[type[StrictSerializer], Any]] = [
    (
        PlaceOrderInput,
        {
            "lines": [{"product_id": PRODUCT, "quantity": 2}],
            "shipping_address": ADDRESS,
        },
    ),
    (PlaceOrderInput, {"lines": [], "shipping_address": ADDRESS}),
    (
        PlaceOrderInput,
        {
            "lines": [{"product_id": "x", "quantity": 0}, {"quantity": "2"}],
            "shipping_address": {**ADDRESS, "country": "France"},
        },
    ),
    (
        PlaceOrderInput,
        {
            "lines": [{"product_id": PRODUCT, "quantity": 1, "price": 1}],
            "shipping_address": ADDRESS,
            "admin": True,
        },
    ),
    (PlaceOrderInput, {"lines": "not a list", "shipping_address": None}),
    (PlaceOrderInput, []),
    (UpdateOrderInput, {"order_id": PRODUCT}),
    (
        UpdateOrderInput,
        {"order_id": PRODUCT, "lines": [{"product_id": PRODUCT, "quantity": 3}]},
    ),
    (UpdateOrderInput, {"order_id": PRODUCT, "shipping_address": {"city": ""}}),
    (PayOrderInput, {"order_id": PRODUCT, "card": CARD}),
    (
        PayOrderInput,
        {"order_id": PRODUCT, "card": {**CARD, "number": "4242424242424241"}},
    ),
    (PayOrderInput, {"order_id": PRODUCT, "card": {**CARD, "exp_year": 2001}}),
    (
        ImportProductsInput,
        {
            "products": [
                {"sku": "A-1", "name": "A", "price_cents": 1, "initial_stock": 0},
                {"sku": "!", "name": "", "price_cents": -1, "initial_stock": 1},
            ]
        },
    ),
]


def deep_copied(serializer_class: type[StrictSerializer]) -> type[StrictSerializer]:
    """The same serializer with DRF's own fields: deep copies of the declared."""

    def get_fields(self: serializers.Serializer) -> dict[str, serializers.Field]:
        return copy.deepcopy(self._declared_fields)

    return type(
        serializer_class.__name__, (serializer_class,), {"get_fields": get_fields}
    )


def answer(serializer: serializers.Serializer) -> tuple[bool, Any, Any]:
    valid = serializer.is_valid()
    return valid, serializer.errors, serializer.validated_data if valid else None


@pytest.mark.parametrize(("serializer_class", "body"), BODIES)
def test_the_same_answer_as_drfs_deep_copies(
    serializer_class: type[StrictSerializer], body: Any
) -> None:
    ours = answer(serializer_class(data=body))
    assert ours == answer(deep_copied(serializer_class)(data=body))


def test_each_serializer_binds_fields_of_its_own() -> None:
    first, second = PlaceOrderInput(), UpdateOrderInput()
    third = PlaceOrderInput()
    for serializer in (first, second, third):
        lines: Any = serializer.fields["lines"]
        assert lines.parent is serializer
        assert lines.child.parent is lines
        assert lines.child.fields["quantity"].parent is lines.child
        assert serializer.fields["shipping_address"].parent is serializer
    ones: Any = first.fields
    others: Any = third.fields
    assert ones["lines"] is not others["lines"]
    assert ones["lines"].child is not others["lines"].child
    assert (
        ones["shipping_address"].fields["city"]
        is not others["shipping_address"].fields["city"]
    )
    # The declared fields themselves are never bound to a serializer.
    for serializer_class in (PlaceOrderInput, UpdateOrderInput):
        declared: Any = serializer_class._declared_fields
        for field in declared.values():
            assert field.parent is None
            assert field.field_name is None
            assert "fields" not in vars(field)
        assert declared["lines"].child.parent is declared["lines"]


def test_threads_validating_at_once_keep_their_own_answers() -> None:
    bodies = [
        {"lines": [{"product_id": PRODUCT, "quantity": n}], "shipping_address": ADDRESS}
        for n in range(1, 401)
    ]
    results: dict[int, Any] = {}

    def validate(share: range) -> None:
        for n in share:
            serializer = PlaceOrderInput(data=bodies[n])
            serializer.is_valid(raise_exception=True)
            results[n] = serializer.validated_data["lines"][0]["quantity"]

    threads = [
        threading.Thread(target=validate, args=(range(i, 400, 8),)) for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: n + 1 for n in range(400)}
