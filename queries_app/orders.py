"""Order reads: a customer sees their own orders, staff see every order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from projections.models import OrderSummary

from . import past, selectors
from .base import ReadApi
from .errors import NotFoundError
from .output import presenter
from .params import BIGINT, InstantField, ReadQuery, ordering_field
from .schema import read_schema

PROJECTIONS = ("order_summary",)
STATUSES = ["placed", "payment_pending", "paid", "shipped", "cancelled"]


class OrderLineOutput(serializers.Serializer):
    product_id = serializers.UUIDField()
    sku = serializers.CharField()
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price_cents = serializers.IntegerField()
    total_cents = serializers.IntegerField()


class TimelineEntryOutput(serializers.Serializer):
    event = serializers.CharField(
        help_text="placed, lines_changed, shipping_address_changed, "
        "payment_requested, paid, payment_declined, shipped, cancelled or refunded."
    )
    at = serializers.DateTimeField()
    position = serializers.IntegerField(help_text="The event's global position.")
    details = serializers.JSONField(help_text="What the event says, e.g. a reason.")


@extend_schema_field(OrderLineOutput(many=True))
class LinesField(serializers.JSONField):
    """The order's lines as the projection stored them."""


@extend_schema_field(TimelineEntryOutput(many=True))
class HistoryField(serializers.JSONField):
    """The order's timeline, oldest first; entries may carry more keys."""


class OrderOutput(serializers.ModelSerializer):
    lines = LinesField()
    history = HistoryField()

    class Meta:
        model = OrderSummary
        fields: tuple[str, ...] = (
            "id",
            "customer_id",
            "status",
            "lines",
            "shipping_address",
            "total_cents",
            "currency",
            "refunded_cents",
            "created_at",
            "updated_at",
            "history",
        )


def visible_to(request: Request) -> int | None:
    """Return the customer whose orders the user may see; None means all (staff)."""
    user = request.user
    return None if user.is_staff else int(user.pk or 0)


class OrderListApi(ReadApi):
    """List orders: the customer's own, or every order for staff."""

    class Query(ReadQuery):
        status = serializers.ChoiceField(choices=STATUSES, required=False)
        created_after = InstantField(
            required=False, help_text="Created at or after (date: its midnight UTC)."
        )
        created_before = InstantField(
            required=False, help_text="Created strictly before (date: midnight UTC)."
        )
        customer_id = serializers.IntegerField(
            required=False,
            min_value=1,
            max_value=BIGINT,
            help_text="Staff: only this customer's orders.",
        )
        ordering = ordering_field(
            ["-created_at", "created_at", "total_cents", "-total_cents"],
            "-created_at",
        )

    projections = PROJECTIONS
    serializer_class = OrderOutput

    @property
    def ordering_field(self) -> str:
        return str(self.params.get("ordering", "-created_at"))

    def get_queryset(self) -> Any:
        params = self.params
        orders = selectors.order_list(
            customer_id=visible_to(self.request),
            status=params.get("status"),
            created_after=params.get("created_after"),
            created_before=params.get("created_before"),
        )
        if "customer_id" in params:
            orders = orders.filter(customer_id=params["customer_id"])
        return orders

    @read_schema(query=Query, output=OrderOutput(many=True), summary="List orders")
    def get(self, request: Request) -> Response:
        return self.page_response(self.get_queryset())


class PastOrderOutput(OrderOutput):
    """An order now, or as it was (`as_of_version`, `as_of`: then both are set)."""

    as_of_version = past.as_of_version_field()
    as_of = past.as_of_field()

    class Meta(OrderOutput.Meta):
        fields = (*OrderOutput.Meta.fields, "as_of_version", "as_of")


class OrderDetailApi(past.PastReadMixin, ReadApi):
    """Show one order, now or as it was; another customer's does not exist."""

    Query = past.PastQuery
    projections = PROJECTIONS
    serializer_class = OrderOutput
    pagination_class = None

    @read_schema(
        query=past.PastQuery,
        output=PastOrderOutput,
        summary="Show an order, now or as it was",
        bad_request="`as_of_version` beyond the order's current version "
        "(`version_beyond_head`, details `as_of_version` and `version`).",
        not_found="No such order, or not yours, or not yet placed at `as_of` "
        "(`order_not_found`).",
        path_id="order_id",
    )
    def get(self, request: Request, order_id: str) -> Response:
        """Show the order from the read model, or as it was.

        With `as_of_version` or `as_of`, the order as it was, folded from its
        events: the same fields plus `as_of_version` and `as_of`.
        """
        if past.is_past(self.params):
            state = past.order_as_of(
                order_id, self.params, customer_id=visible_to(request)
            )
            return Response(presenter(PastOrderOutput).one(state))
        output = self.output
        order = order_get(
            order_id, customer_id=visible_to(request), columns=output.columns
        )
        return Response(output.one(order))


def order_get(
    order_id: str, *, customer_id: int | None, columns: Sequence[str]
) -> dict[str, Any]:
    """Return the order's `columns` if the customer (None: staff) may see it.

    Refuse with 404 otherwise.
    """
    missing = NotFoundError("order_not_found", "No such order.", order_id=order_id[:64])
    try:
        key = UUID(order_id)
    except ValueError:
        raise missing from None
    order = (
        selectors.order_list(customer_id=customer_id)
        .filter(id=key)
        .values(*columns)
        .first()
    )
    if order is None:
        raise missing
    return order
