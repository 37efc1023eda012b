"""Input serializers for every command: structural validation only.

Unknown fields are refused (no mass assignment); every business rule belongs to
the domain and is decided by a worker.
"""

from __future__ import annotations

import datetime as dt
import heapq
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.fields import get_error_detail

from observability.logs import CARD_MAX_DIGITS, CARD_MIN_DIGITS, luhn_valid

from .errors import MAX_ERRORS, OMITTED_KEY

MAX_LINES = 100
MAX_QUANTITY = 10_000
MAX_PRICE_CENTS = 100_000_000
MAX_STOCK = 1_000_000_000


# DRF coerces between JSON types (123 → "123", "5" → 5, 5 → a UUID); a JSON API
# refuses a value of the wrong type instead of guessing what was meant.
_JSON_TYPES: tuple[tuple[type[serializers.Field], type, str], ...] = (
    (serializers.CharField, str, "a string"),
    (serializers.UUIDField, str, "a string"),
    (serializers.IntegerField, int, "an integer"),
)


class ItemsField(serializers.ListField):
    """A list whose items stop being checked past the answer's error cap.

    DRF checks every item, so a list of 50,000 invalid items costs 50,000
    failed validations for an answer that shows 20 of them.
    """

    def run_child_validation(self, data: list[Any]) -> list[Any]:
        result: list[Any] = []
        errors: dict[Any, Any] = {}
        for index, item in enumerate(data):
            try:
                result.append(self.child.run_validation(item))
            except serializers.ValidationError as exc:
                errors[index] = exc.detail
                if len(errors) > MAX_ERRORS:
                    break
            except DjangoValidationError as exc:
                errors[index] = get_error_detail(exc)
        if errors:
            raise serializers.ValidationError(errors)
        return result


class StrictSerializer(serializers.Serializer):
    """Refuse fields the serializer does not declare and values of another type.

    A list's length is checked before its items: DRF validates every item of a
    `ListField` before its `max_length` applies, so one body with a million
    invalid items would cost a million validations and errors. Every list is
    an `ItemsField` with a `max_length`; a subclass declaring another is
    refused when it is defined.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, field in getattr(cls, "_declared_fields", {}).items():
            if isinstance(field, serializers.ListField) and (
                not isinstance(field, ItemsField) or field.max_length is None
            ):
                raise TypeError(
                    f"{cls.__name__}.{name}: a list must be an ItemsField "
                    "with a max_length"
                )

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            too_long = {
                name: [
                    field.error_messages["max_length"].format(
                        max_length=field.max_length
                    )
                ]
                for name, field in self.fields.items()
                if isinstance(field, serializers.ListField)
                and field.max_length is not None
                and isinstance(value := data.get(name), list)
                and len(value) > field.max_length
            }
            if too_long:
                raise serializers.ValidationError(too_long)
            unknown = set(data) - set(self.fields)
            if unknown:
                # Named up to the answer's cap; the rest are only counted.
                refused: dict[str, Any] = {
                    name: ["This field is not allowed."]
                    for name in heapq.nsmallest(MAX_ERRORS, unknown)
                }
                if len(unknown) > MAX_ERRORS:
                    refused[OMITTED_KEY] = len(unknown) - MAX_ERRORS
                raise serializers.ValidationError(refused)
            mistyped = {
                name: [f"Expected {label}."]
                for name, value in data.items()
                for field_class, json_type, label in _JSON_TYPES
                if isinstance(self.fields[name], field_class)
                and value is not None
                and (not isinstance(value, json_type) or isinstance(value, bool))
            }
            if mistyped:
                raise serializers.ValidationError(mistyped)
        return super().to_internal_value(data)


def _text(max_length: int, **kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=max_length, trim_whitespace=True, **kwargs)


def _sku() -> serializers.RegexField:
    return serializers.RegexField(
        r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z",
        max_length=64,
        help_text="Letters, digits, '.', '_' and '-'; unique across the catalogue.",
    )


class RegisterProductInput(StrictSerializer):
    product_id = serializers.UUIDField(required=False)
    sku = _sku()
    name = _text(200)
    price_cents = serializers.IntegerField(min_value=0, max_value=MAX_PRICE_CENTS)
    initial_stock = serializers.IntegerField(min_value=0, max_value=MAX_STOCK)


class RestockProductInput(StrictSerializer):
    product_id = serializers.UUIDField()
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_STOCK)


class ImportItemInput(StrictSerializer):
    sku = _sku()
    name = _text(200)
    price_cents = serializers.IntegerField(min_value=0, max_value=MAX_PRICE_CENTS)
    initial_stock = serializers.IntegerField(min_value=0, max_value=MAX_STOCK)


class ImportProductsInput(StrictSerializer):
    products = ItemsField(
        child=ImportItemInput(),
        min_length=1,
        max_length=settings.IMPORT_MAX_ITEMS,
        help_text="Up to 50,000 products; a SKU already registered is skipped.",
    )


class LineInput(StrictSerializer):
    product_id = serializers.UUIDField()
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class AddressInput(StrictSerializer):
    name = _text(200)
    line1 = _text(200)
    city = _text(100)
    postal_code = _text(20)
    country = serializers.RegexField(
        r"^[A-Z]{2}\Z", help_text="ISO 3166-1 alpha-2 code, e.g. FR."
    )


class PlaceOrderInput(StrictSerializer):
    order_id = serializers.UUIDField(required=False)
    lines = ItemsField(child=LineInput(), min_length=1, max_length=MAX_LINES)
    shipping_address = AddressInput()


class CardInput(StrictSerializer):
    number = serializers.RegexField(
        rf"^[0-9]{{{CARD_MIN_DIGITS},{CARD_MAX_DIGITS}}}\Z", write_only=True
    )
    exp_month = serializers.IntegerField(min_value=1, max_value=12)
    exp_year = serializers.IntegerField(min_value=2000, max_value=2100)
    cvc = serializers.RegexField(r"^[0-9]{3,4}\Z", write_only=True)

    def validate_number(self, value: str) -> str:
        if not luhn_valid(value):
            raise serializers.ValidationError("This card number is not valid.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        today = dt.date.today()
        if (attrs["exp_year"], attrs["exp_month"]) < (today.year, today.month):
            raise serializers.ValidationError({"exp_year": ["This card has expired."]})
        return attrs


class PayOrderInput(StrictSerializer):
    order_id = serializers.UUIDField()
    card = CardInput()


class CancelOrderInput(StrictSerializer):
    order_id = serializers.UUIDField()
    reason = _text(500, required=False, allow_blank=True, default="")


class ShipOrderInput(StrictSerializer):
    order_id = serializers.UUIDField()
    tracking_number = _text(100, required=False, allow_blank=True, default="")


class UpdateOrderInput(StrictSerializer):
    # At least one of them (the OpenAPI schema says so too, as `anyOf`).
    at_least_one_of = ("lines", "shipping_address")

    order_id = serializers.UUIDField()
    lines = ItemsField(
        child=LineInput(),
        min_length=1,
        max_length=MAX_LINES,
        required=False,
        help_text=(
            "The order's whole new lines (they replace the old ones), until it "
            "is paid. Stock moves by the difference; lines already ordered keep "
            "their price. To remove every line, cancel the order."
        ),
    )
    shipping_address = AddressInput(
        required=False, help_text="Where to ship the order, until it ships."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not any(name in attrs for name in self.at_least_one_of):
            raise serializers.ValidationError(
                "Send `lines`, `shipping_address` or both: there is nothing to change."
            )
        return attrs


class CommandAcceptedOutput(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.CharField()
    status = serializers.CharField()
    status_url = serializers.CharField()
    aggregate_id = serializers.UUIDField(allow_null=True)


class CommandStatusOutput(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["accepted", "running", "succeeded", "rejected", "failed"]
    )
    progress = serializers.IntegerField(
        help_text="0 to 100; long-running commands only."
    )
    result = serializers.JSONField(allow_null=True)
    error = serializers.JSONField(
        allow_null=True, help_text="`{code, message, details}` when rejected or failed."
    )
    aggregate_id = serializers.UUIDField(allow_null=True)
    position = serializers.IntegerField(
        allow_null=True, help_text="Global position of the command's last event."
    )
    projected = serializers.BooleanField(
        help_text="True once every read model reflects the command."
    )
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class ErrorOutput(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField()
