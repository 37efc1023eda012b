"""Reads of the projection tables, one function per listing."""

from __future__ import annotations

from datetime import date, datetime

from django.db.models import Q, QuerySet

from projections.models import DailySales, OrderSummary, ProductCatalogue

PRODUCT_FIELDS = ("id", "sku", "name", "price_cents", "available")


def product_list(
    *,
    sku: str | None = None,
    q: str | None = None,
    search: str | None = None,
    min_available: int | None = None,
) -> QuerySet[ProductCatalogue]:
    """Return catalogue rows matching the filters (unordered).

    `search` is a part of the name or of the SKU, any case: trigram indexes
    on both (read_products_search_*) answer it without a scan.
    """
    products = ProductCatalogue.objects.only(*PRODUCT_FIELDS)
    if sku is not None:
        products = products.filter(sku=sku)
    if q:
        products = products.filter(name__icontains=q)
    if search:
        products = products.filter(Q(name__icontains=search) | Q(sku__icontains=search))
    if min_available is not None:
        products = products.filter(available__gte=min_available)
    return products


def order_list(
    *,
    customer_id: int | None,
    status: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> QuerySet[OrderSummary]:
    """Return order summaries, of one customer unless `customer_id` is None."""
    orders = OrderSummary.objects.all()
    if customer_id is not None:
        orders = orders.filter(customer_id=customer_id)
    if status is not None:
        orders = orders.filter(status=status)
    if created_after is not None:
        orders = orders.filter(created_at__gte=created_after)
    if created_before is not None:
        orders = orders.filter(created_at__lt=created_before)
    return orders


def daily_sales_list(
    *, start: date | None = None, end: date | None = None
) -> QuerySet[DailySales]:
    """Return daily sales rows from `start` to `end`, both included."""
    days = DailySales.objects.all()
    if start is not None:
        days = days.filter(day__gte=start)
    if end is not None:
        days = days.filter(day__lte=end)
    return days
