"""Sales statistics for staff: one row per day."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response

from projections.models import DailySales

from . import selectors
from .base import ReadApi
from .params import ReadQuery, date_range_error, ordering_field
from .schema import read_schema

PROJECTIONS = ("daily_sales",)


class DailySalesOutput(serializers.ModelSerializer):
    class Meta:
        model = DailySales
        fields = ("day", "orders", "revenue_cents", "units", "cancelled_orders")


class SalesQuery(ReadQuery):
    ordering = ordering_field(["-day", "day"], "-day")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # "from" is a Python keyword, so it cannot be declared as an attribute.
        fields["from"] = serializers.DateField(
            required=False, help_text="First day, included (YYYY-MM-DD)."
        )
        fields["to"] = serializers.DateField(
            required=False, help_text="Last day, included (YYYY-MM-DD)."
        )
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        date_range_error(attrs.get("from"), attrs.get("to"), "to")
        return attrs


class SalesStatsApi(ReadApi):
    """List daily orders, revenue and units (staff only)."""

    Query = SalesQuery
    projections = PROJECTIONS
    permission_classes = [IsAdminUser]
    serializer_class = DailySalesOutput

    @property
    def ordering_field(self) -> str:
        return str(self.params.get("ordering", "-day"))

    def get_queryset(self) -> Any:
        return selectors.daily_sales_list(
            start=self.params.get("from"), end=self.params.get("to")
        )

    @read_schema(
        query=SalesQuery,
        output=DailySalesOutput(many=True),
        summary="Daily sales",
        staff_only=True,
    )
    def get(self, request: Request) -> Response:
        return self.page_response(self.get_queryset())
