"""Product catalogue reads: list and detail."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from projections.models import ProductCatalogue

from . import past, selectors
from .base import ReadApi
from .errors import NotFoundError
from .output import presenter
from .params import ReadQuery, ordering_field
from .schema import read_schema

PROJECTIONS = ("product_catalogue",)


class ProductOutput(serializers.ModelSerializer):
    class Meta:
        model = ProductCatalogue
        fields: tuple[str, ...] = selectors.PRODUCT_FIELDS


class ProductListApi(ReadApi):
    """List the catalogue with available stock."""

    class Query(ReadQuery):
        sku = serializers.CharField(required=False, max_length=64)
        q = serializers.CharField(
            required=False, max_length=100, help_text="Part of the name, any case."
        )
        search = serializers.CharField(
            required=False,
            max_length=100,
            help_text="Part of the name or of the SKU, any case (what the shop's "
            "search box sends).",
        )
        min_available = serializers.IntegerField(
            required=False, min_value=0, max_value=2**63 - 1
        )
        ordering = ordering_field(
            ["name", "-name", "price_cents", "-price_cents", "sku"], "name"
        )

    projections = PROJECTIONS
    serializer_class = ProductOutput

    @property
    def ordering_field(self) -> str:
        return str(self.params.get("ordering", "name"))

    def get_queryset(self) -> Any:
        params = self.params
        return selectors.product_list(
            sku=params.get("sku"),
            q=params.get("q"),
            search=params.get("search"),
            min_available=params.get("min_available"),
        )

    @read_schema(query=Query, output=ProductOutput(many=True), summary="List products")
    def get(self, request: Request) -> Response:
        return self.page_response(self.get_queryset())


class PastProductOutput(ProductOutput):
    """A product now, or as it was (`as_of_version`, `as_of`: then both are set)."""

    as_of_version = past.as_of_version_field()
    as_of = past.as_of_field()

    class Meta(ProductOutput.Meta):
        fields = (*ProductOutput.Meta.fields, "as_of_version", "as_of")


class ProductDetailApi(past.PastReadMixin, ReadApi):
    """Show one product, now or (staff) as it was."""

    Query = past.PastQuery
    projections = PROJECTIONS
    serializer_class = ProductOutput
    pagination_class = None

    @read_schema(
        query=past.PastQuery,
        output=PastProductOutput,
        summary="Show a product, now or (staff) as it was",
        bad_request="`as_of_version` beyond the product's current version "
        "(`version_beyond_head`).",
        staff_only="Past states (`as_of_version`, `as_of`) are staff only "
        "(`permission_denied`).",
        not_found="No such product, or not yet registered at `as_of` "
        "(`product_not_found`).",
        path_id="product_id",
    )
    def get(self, request: Request, product_id: str) -> Response:
        """Show the product from the read model, or (staff) as it was.

        With `as_of_version` or `as_of`, the product as it was, folded from its
        events from the nearest kept snapshot: the same fields plus
        `as_of_version` and `as_of`.
        """
        if past.is_past(self.params):
            state = past.product_as_of(
                product_id, self.params, is_staff=bool(request.user.is_staff)
            )
            return Response(presenter(PastProductOutput).one(state))
        output = self.output
        return Response(output.one(product_get(product_id, columns=output.columns)))


def product_get(product_id: str, *, columns: Sequence[str]) -> dict[str, Any]:
    """Return the product's `columns`, or refuse with 404."""
    missing = NotFoundError(
        "product_not_found", "No such product.", product_id=product_id[:64]
    )
    try:
        key = UUID(product_id)
    except ValueError:
        raise missing from None
    product = selectors.product_list().filter(id=key).values(*columns).first()
    if product is None:
        raise missing
    return product
