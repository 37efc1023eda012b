"""Write-side tables: command records, the event store and the SKU index."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models.fields.json import KT
from django.db.models.functions import Now


class CommandStatus(models.TextChoices):
    """Where a command is in its life cycle.

    TextChoices is a `StrEnum`: a member equals the string stored in
    `commands.status` and compared in SQL, so Python and SQL spell it alike.
    """

    ACCEPTED = "accepted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    FAILED = "failed"


FINAL_STATUSES = frozenset(
    {CommandStatus.SUCCEEDED, CommandStatus.REJECTED, CommandStatus.FAILED}
)


class CommandRecord(models.Model):
    """One accepted command and its progress; PostgreSQL is its only truth."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="commands"
    )
    status = models.CharField(
        max_length=16, choices=CommandStatus.choices, default=CommandStatus.ACCEPTED
    )
    payload = models.JSONField(
        help_text="The validated command body; card numbers are replaced by a token."
    )
    aggregate_id = models.UUIDField(null=True, blank=True, db_index=True)
    # NULL, not "", for "no key": the unique constraint only covers given keys.
    idempotency_key = models.CharField(  # noqa: DJ001
        max_length=255, null=True, blank=True
    )
    request_hash = models.CharField(
        max_length=64, help_text="SHA-256 of the canonical body, for idempotency."
    )
    progress = models.PositiveSmallIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    position = models.BigIntegerField(
        null=True, blank=True, help_text="Global position of the command's last event."
    )
    attempt = models.PositiveIntegerField(
        default=0, help_text="How many times a worker has claimed this command."
    )
    redriven_at_attempt = models.PositiveIntegerField(
        default=0,
        db_default=0,
        help_text=(
            "The attempt number when staff last re-drove it: attempts only go up "
            "(they fence stale workers), COMMAND_MAX_ATTEMPTS counts from here."
        ),
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    status_seq = models.PositiveIntegerField(
        default=1, help_text="Incremented on every status change; pushes carry it."
    )
    correlation_id = models.UUIDField(
        default=uuid.uuid4,
        editable=False,
        help_text="The trace id of the request that sent it; in its events' metadata.",
    )
    traceparent = models.CharField(
        max_length=55,
        blank=True,
        default="",
        editable=False,
        help_text="W3C trace context of the accepting span; workers continue it.",
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    enqueued_at = models.DateTimeField(
        db_default=Now(), help_text="When a task for it was last published."
    )
    publish_pending = models.BooleanField(
        default=False,
        db_default=False,
        help_text=(
            "Accepted, and waiting for the command relay to publish its task "
            "(the command row is the outbox)."
        ),
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "commands"
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=("user", "idempotency_key"),
                condition=models.Q(idempotency_key__isnull=False),
                name="commands_unique_idempotency_key_per_user",
            )
        ]
        indexes = [
            # The admin's filters. Plain B-trees: `db_index=True` also built a
            # `varchar_pattern_ops` twin of each for LIKE, which no query uses
            # and every accept, claim and final status paid for.
            models.Index(fields=("type",), name="commands_type_idx"),
            models.Index(fields=("status",), name="commands_status_idx"),
            models.Index(
                fields=("status", "enqueued_at"),
                name="commands_open_idx",
                condition=models.Q(
                    status__in=[CommandStatus.ACCEPTED, CommandStatus.RUNNING]
                ),
            ),
            # The periodic queries: "projected" pushes by position, the staff
            # dashboard by created_at and finished_at, retention by finished_at.
            # Partial, so that accepting a command writes no entry for them.
            models.Index(
                fields=("position",),
                name="commands_position_idx",
                condition=models.Q(position__isnull=False),
            ),
            models.Index(fields=("created_at",), name="commands_created_idx"),
            # The command relay's queue: only the rows not yet published.
            models.Index(
                fields=("created_at",),
                name="commands_publish_pending_idx",
                condition=models.Q(publish_pending=True),
            ),
            models.Index(
                fields=("finished_at",),
                name="commands_finished_idx",
                condition=models.Q(finished_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class XID8Field(models.Field):
    """PostgreSQL's 64-bit transaction id, compared to the snapshot horizon."""

    description = "PostgreSQL xid8"

    def db_type(self, connection: object) -> str:
        return "xid8"

    def from_db_value(
        self, value: object, expression: object, connection: object
    ) -> int | None:
        return None if value is None else int(str(value))


class StoredEvent(models.Model):
    """An appended event; the database refuses UPDATE and DELETE on this table."""

    position = models.BigAutoField(primary_key=True)
    tx_id = XID8Field(
        db_default=models.Func(function="pg_current_xact_id"),
        editable=False,
        help_text="Id of the appending transaction; readers stay below the horizon.",
    )
    stream_id = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    type = models.CharField(max_length=100)
    data = models.JSONField()
    metadata = models.JSONField(default=dict)
    recorded_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "events"
        ordering = ("position",)
        constraints = [
            models.UniqueConstraint(
                fields=("stream_id", "version"), name="events_unique_stream_version"
            )
        ]
        indexes = [
            models.Index(fields=("tx_id", "position"), name="events_tx_pos_idx"),
            # The admin finds a command's events, and a request's, by these.
            models.Index(KT("metadata__command_id"), name="events_command_idx"),
            models.Index(KT("metadata__correlation_id"), name="events_correlation_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.position} {self.type} {self.stream_id}@{self.version}"


class ProductSku(models.Model):
    """Which product owns a SKU: the write side's uniqueness guard."""

    sku = models.CharField(max_length=64, primary_key=True)
    product_id = models.UUIDField(unique=True)

    class Meta:
        db_table = "product_skus"

    def __str__(self) -> str:
        return self.sku


class StreamSnapshot(models.Model):
    """An aggregate's state at a version: loading it reads only the events after.

    A cache of the event store, written in the transaction that appends the
    events it sums up; `schema` is the aggregate's snapshot format, and a
    snapshot of another format is ignored (replayed from the events instead).
    """

    stream_id = models.CharField(max_length=100, primary_key=True)
    version = models.PositiveIntegerField()
    schema = models.PositiveSmallIntegerField()
    state = models.JSONField()

    class Meta:
        db_table = "stream_snapshots"

    def __str__(self) -> str:
        return f"{self.stream_id}@{self.version}"


class StreamSnapshotHistory(models.Model):
    """Every snapshot ever stored, kept for past-state reads.

    `stream_snapshots` holds a stream's latest snapshot only, which cannot
    answer "the product as it was at version N" for N below it; these rows can
    (the nearest one at or below N, then the events up to N). Written in the
    same statement as the latest snapshot, so never ahead of the events. Only
    aggregates without personal data are snapshotted (products), so
    crypto-shredding has nothing to erase here.
    """

    pk = models.CompositePrimaryKey("stream_id", "version")
    stream_id = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    schema = models.PositiveSmallIntegerField()
    state = models.JSONField()

    class Meta:
        db_table = "stream_snapshot_history"

    def __str__(self) -> str:
        return f"{self.stream_id}@{self.version}"


class GatewayLedgerEntry(models.Model):
    """The simulated payment gateway's own record of a charge or a refund.

    It stands in for the provider's records, which the system reconciles
    against: one row per idempotency key, written by the gateway in a
    connection of its own (autocommit), never in the caller's transaction.
    """

    KINDS = (("charge", "charge"), ("refund", "refund"))
    OUTCOMES = (("succeeded", "succeeded"), ("declined", "declined"))

    id = models.BigAutoField(primary_key=True)
    idempotency_key = models.CharField(max_length=255, unique=True)
    kind = models.CharField(max_length=8, choices=KINDS)
    outcome = models.CharField(max_length=16, choices=OUTCOMES)
    reference = models.CharField(
        max_length=64, unique=True, help_text="The gateway's id (ch_…, re_…)."
    )
    charge_reference = models.CharField(
        max_length=64, blank=True, default="", help_text="A refund's charge."
    )
    order_id = models.UUIDField(
        null=True, blank=True, db_index=True, help_text="The merchant's reference."
    )
    amount_cents = models.BigIntegerField()
    decline_code = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "gateway_ledger"
        ordering = ("id",)

    def __str__(self) -> str:
        return f"{self.kind} {self.reference} {self.amount_cents} ({self.outcome})"


class EffectStatus(models.TextChoices):
    PENDING = "pending"
    DONE = "done"
    PARKED = "parked"


class Effect(models.Model):
    """Something to do outside the store, decided by a committed event (an outbox row).

    Inserted in the transaction that appends the event, delivered at least once
    by the relay (`commands_app.effects`), made safe by `idempotency_key`; in
    order per (kind, stream): a later one waits while an earlier one is
    pending or parked. Parked after EFFECTS_MAX_ATTEMPTS failures, until an
    operator retries it.
    """

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=32)
    stream_id = models.CharField(max_length=100)
    event_position = models.BigIntegerField(help_text="The event that decided it.")
    idempotency_key = models.CharField(
        max_length=255, help_text="Sent to the other side, which must honour it."
    )
    status = models.CharField(
        max_length=8, choices=EffectStatus.choices, default=EffectStatus.PENDING
    )
    attempts = models.PositiveIntegerField(
        default=0, help_text="Only goes up: it fences the relays of earlier attempts."
    )
    retried_at_attempt = models.PositiveIntegerField(
        db_default=0,
        help_text="`attempts` when an operator last retried it; the attempt budget "
        "counts from here.",
    )
    due_at = models.DateTimeField(db_default=Now())
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    traceparent = models.CharField(max_length=55, blank=True, default="")
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "effects"
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(
                fields=("kind", "idempotency_key"), name="effects_unique_kind_key"
            )
        ]
        indexes = [
            # In the claim's order, so that it stops at the first free one.
            models.Index(
                fields=("due_at", "id"),
                name="effects_due_id_idx",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=("kind", "stream_id", "id"),
                name="effects_open_idx",
                condition=models.Q(status__in=["pending", "parked"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.id} {self.stream_id} ({self.status})"


class CustomerKey(models.Model):
    """A customer's data key, wrapped by a master key (envelope encryption).

    The personal fields of the customer's events are encrypted with it
    (commands_app/pii.py). Forgetting the customer destroys it: the row stays
    as a tombstone (no key, `forgotten_at` set), so that later events about
    the customer store their personal fields as erased.
    """

    customer_id = models.BigIntegerField(primary_key=True)
    master_key_id = models.CharField(
        max_length=16,
        blank=True,
        default="",
        help_text="Fingerprint of the master key that wraps it (rotation).",
    )
    wrapped_key = models.BinaryField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    forgotten_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "customer_keys"

    def __str__(self) -> str:
        state = "forgotten" if self.forgotten_at else self.master_key_id
        return f"customer {self.customer_id} ({state})"
