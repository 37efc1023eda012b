"""A customer's own data, as JSON: what the system holds about the signed-in user.

GDPR's right of access: the user record and every order as the read model
holds it (lines, shipping address, timeline). After `forget-customer` the user
can no longer sign in, and every personal field reads `[erased]`.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from projections.models import OrderSummary

from .base import ReadApi
from .orders import PROJECTIONS, OrderOutput
from .params import ReadQuery
from .schema import read_schema


class ProfileOutput(serializers.Serializer):
    id = serializers.IntegerField(help_text="Your customer id (`customer_id`).")
    username = serializers.CharField()
    email = serializers.CharField(allow_blank=True)
    first_name = serializers.CharField(allow_blank=True)
    last_name = serializers.CharField(allow_blank=True)
    date_joined = serializers.DateTimeField()
    last_login = serializers.DateTimeField(allow_null=True)


class MyDataOutput(serializers.Serializer):
    exported_at = serializers.DateTimeField()
    profile = ProfileOutput()
    orders = OrderOutput(many=True, help_text="Every order of yours, newest first.")


class MyDataApi(ReadApi):
    """Export the signed-in user's own data as one JSON document."""

    Query = ReadQuery
    projections = PROJECTIONS
    pagination_class = None
    serializer_class = MyDataOutput

    @read_schema(
        query=ReadQuery,
        output=MyDataOutput,
        summary="Your own data (GDPR access)",
    )
    def get(self, request: Request) -> Response:
        user: Any = request.user
        orders = OrderSummary.objects.filter(customer_id=user.pk).order_by(
            "-created_at", "id"
        )
        body = {
            "exported_at": timezone.now(),
            "profile": user,
            "orders": list(orders),
        }
        response = Response(MyDataOutput(body).data)
        # A personal document: no shared cache may keep it.
        response["Cache-Control"] = "private, no-store"
        return response
