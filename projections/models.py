"""Read-side bookkeeping: each projection's checkpoint in the read database."""

from __future__ import annotations

from django.db import models


class Checkpoint(models.Model):
    """How far one projection has applied the event store, in reader order."""

    name = models.CharField(max_length=64, primary_key=True)
    tx_id = models.BigIntegerField(
        default=0, help_text="Transaction id of the last event applied."
    )
    position = models.BigIntegerField(
        default=0, help_text="Global position of the last event applied."
    )
    updated_at = models.DateTimeField(auto_now=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        db_table = "read_checkpoints"

    def __str__(self) -> str:
        return f"{self.name} @ {self.position}"


class ProjectedRow(models.Model):
    """Base of read rows: the global position of the last event applied to them."""

    position = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class ProductCatalogue(ProjectedRow):
    """Product catalogue: price and available stock (read model `product_catalogue`)."""

    id = models.UUIDField(primary_key=True)
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    price_cents = models.BigIntegerField()
    available = models.BigIntegerField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "read_products"
        indexes = [models.Index(fields=("name", "id"), name="read_products_name_idx")]

    def __str__(self) -> str:
        return f"{self.sku} ({self.available} available)"


class OrderSummary(ProjectedRow):
    """One order with its lines, total, status and timeline (`order_summary`)."""

    id = models.UUIDField(primary_key=True)
    customer_id = models.BigIntegerField(db_index=True)
    status = models.CharField(max_length=16, db_index=True)
    lines = models.JSONField(default=list)
    shipping_address = models.JSONField(default=dict)
    total_cents = models.BigIntegerField()
    history = models.JSONField(
        default=list, help_text="Timeline: [{event, at, position, ...}] in order."
    )
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "read_orders"
        indexes = [
            models.Index(
                fields=("customer_id", "created_at"), name="read_orders_cust_idx"
            )
        ]

    def __str__(self) -> str:
        return f"order {self.id} ({self.status})"


class CustomerOrderHistory(ProjectedRow):
    """A customer's orders, newest first, for their history page."""

    order_id = models.UUIDField(primary_key=True)
    customer_id = models.BigIntegerField()
    status = models.CharField(max_length=16)
    total_cents = models.BigIntegerField()
    item_count = models.IntegerField()
    placed_at = models.DateTimeField()

    class Meta:
        db_table = "read_customer_orders"
        indexes = [
            models.Index(
                fields=("customer_id", "-placed_at"), name="read_cust_orders_idx"
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.order_id}"


class SalesOrder(ProjectedRow):
    """One order's contribution to daily sales, so that days recompute idempotently."""

    order_id = models.UUIDField(primary_key=True)
    day = models.DateField(db_index=True)
    revenue_cents = models.BigIntegerField()
    units = models.IntegerField()
    cancelled = models.BooleanField(default=False)

    class Meta:
        db_table = "read_sales_orders"

    def __str__(self) -> str:
        return f"{self.day}: {self.order_id}"


class DailySales(ProjectedRow):
    """Orders, revenue and units per day (staff); cancelled orders excluded."""

    day = models.DateField(primary_key=True)
    orders = models.IntegerField(default=0)
    revenue_cents = models.BigIntegerField(default=0)
    units = models.IntegerField(default=0)
    cancelled_orders = models.IntegerField(default=0)

    class Meta:
        db_table = "read_daily_sales"

    def __str__(self) -> str:
        return f"{self.day}: {self.orders} orders"
