"""Input serializers for every command: structural validation only.

Unknown fields are refused (no mass assignment); every business rule belongs to
the domain and is decided by a worker.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from rest_framework import serializers

from api.serializers import ItemsField, StrictSerializer
from observability.logs import CARD_MAX_DIGITS, CARD_MIN_DIGITS, luhn_valid

from .models import CommandStatus

MAX_LINES = 100
MAX_QUANTITY = 10_000
MAX_PRICE_CENTS = 100_000_000
MAX_STOCK = 1_000_000_000


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


class ForgetCustomerInput(StrictSerializer):
    customer_id = serializers.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        help_text="The customer's user id (`customer_id` of their orders).",
    )


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
    status = serializers.ChoiceField(choices=CommandStatus.values)
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
