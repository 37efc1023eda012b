"""Read-side bookkeeping: each projection's checkpoint in the read database."""

from __future__ import annotations

from django.db import models

from commands_app.eventstore import Position


class Checkpoint(models.Model):
    """How far one projection has applied the event store, in reader order.

    A table row, not the position itself: `to_position()` is the reader
    position it stores (`commands_app.eventstore.Position`), `move_to()` stores one.
    """

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

    def to_position(self) -> Position:
        """Return the reader position this projection has applied up to."""
        return Position(self.tx_id, self.position)

    def move_to(self, position: Position) -> None:
        """Set (not save) the reader position this projection has applied up to."""
        self.tx_id, self.position = position.tx_id, position.position


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
        # Also trigram indexes on UPPER(name) and UPPER(sku), created by SQL in
        # migration 0003 (pg_trgm): `search` is UPPER(column) LIKE '%…%'.
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
    currency = models.CharField(
        max_length=3,
        db_default="EUR",
        help_text="ISO 4217 code of the order's amounts (OrderPlaced v2; "
        "orders placed as v1 read as EUR).",
    )
    refunded_cents = models.BigIntegerField(
        db_default=0, help_text="What the gateway refunded (OrderRefunded events)."
    )
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


class DeadLetterStatus(models.TextChoices):
    PARKED = "parked", "parked"
    WAITING = "waiting", "waiting behind a parked event"
    REPLAYED = "replayed", "replayed"
    DISCARDED = "discarded", "discarded"


class DeadLetter(models.Model):
    """An event one projection could not apply, or one waiting behind it.

    The event itself is kept so that a replay needs nothing but this row.
    """

    projection = models.CharField(max_length=64)
    position = models.BigIntegerField()
    tx_id = models.BigIntegerField()
    stream_id = models.CharField(max_length=200)
    version = models.IntegerField()
    event_type = models.CharField(max_length=100)
    data = models.JSONField()
    metadata = models.JSONField(default=dict)
    recorded_at = models.DateTimeField()
    error = models.TextField(blank=True, default="")
    attempts = models.IntegerField(default=0)
    status = models.CharField(
        max_length=16,
        choices=DeadLetterStatus.choices,
        default=DeadLetterStatus.PARKED,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "read_dead_letters"
        constraints = [
            models.UniqueConstraint(
                fields=("projection", "position"), name="read_dead_letters_unique"
            )
        ]
        indexes = [
            models.Index(
                fields=("projection", "status", "stream_id"),
                name="read_dead_letters_open_idx",
            )
        ]
        permissions = [
            ("replay_deadletter", "Can replay dead letters"),
            ("discard_deadletter", "Can discard dead letters"),
        ]

    def __str__(self) -> str:
        return f"{self.projection} @ {self.position} ({self.status})"


class ProjectedMark(models.Model):
    """The lowest checkpoint of all projections already announced as projected."""

    id = models.SmallIntegerField(primary_key=True, default=1)
    tx_id = models.BigIntegerField(default=0)
    position = models.BigIntegerField(default=0)

    class Meta:
        db_table = "read_projected_mark"

    def __str__(self) -> str:
        return f"projected up to {self.position}"
