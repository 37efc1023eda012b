"""Admin for checkpoints, dead letters and (read-only) read models."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from commands_app import eventstore

from . import maintenance, past
from .dead_letters import discard_dead_letters, replay_dead_letters
from .models import (
    Checkpoint,
    CustomerOrderHistory,
    DailySales,
    DeadLetter,
    OrderSummary,
    ProductCatalogue,
    SalesOrder,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by projectors only: viewable, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "position",
        "lag_events",
        "lag_seconds",
        "updated_at",
        "last_error",
        "last_job",
    )
    readonly_fields = (
        "name",
        "tx_id",
        "position",
        "updated_at",
        "last_error",
        "last_job",
        "last_job_details",
    )
    actions = ("rebuild", "verify", "replay")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Checkpoint]:
        self._head = eventstore.head()
        return super().get_queryset(request)

    @admin.display(description="lag (events)")
    def lag_events(self, obj: Checkpoint) -> int:
        head = getattr(self, "_head", None) or eventstore.head()
        return max(0, head.position - obj.position)

    @admin.display(description="lag (seconds)")
    def lag_seconds(self, obj: Checkpoint) -> float:
        pending = eventstore.read_after(obj.to_position(), limit=1)
        if not pending:
            return 0.0
        return round((timezone.now() - pending[0].recorded_at).total_seconds(), 1)

    @admin.display(description="last rebuild / verify")
    def last_job(self, obj: Checkpoint) -> str:
        return maintenance.describe(maintenance.job_status(obj.name))

    @admin.display(description="rebuild / verify details")
    def last_job_details(self, obj: Checkpoint) -> str:
        status = maintenance.job_status(obj.name)
        if not status:
            return "No rebuild or verification since the cache was last emptied."
        return format_html(
            "<pre>{}</pre>", json.dumps(status, indent=2, sort_keys=True)
        )

    def has_rebuild_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("projections.change_checkpoint")

    def has_verify_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("projections.change_checkpoint")

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("projections.replay_deadletter")

    @admin.action(
        description="Rebuild (aside, then swap; on the maintenance queue)",
        permissions=["rebuild"],
    )
    def rebuild(self, request: HttpRequest, queryset: QuerySet[Checkpoint]) -> None:
        self._queue("rebuild", request, queryset)

    @admin.action(
        description="Verify (replay aside, compare checksums)",
        permissions=["verify"],
    )
    def verify(self, request: HttpRequest, queryset: QuerySet[Checkpoint]) -> None:
        self._queue("verify", request, queryset)

    def _queue(
        self, kind: str, request: HttpRequest, queryset: QuerySet[Checkpoint]
    ) -> None:
        for checkpoint in queryset:
            if maintenance.queue_job(kind, checkpoint.name):
                self.message_user(
                    request,
                    f"{kind.capitalize()} of {checkpoint.name} queued; its "
                    "progress shows in the last rebuild / verify column.",
                )
            else:
                self.message_user(
                    request,
                    f"A rebuild or verification of {checkpoint.name} is "
                    "already queued or running.",
                    messages.WARNING,
                )

    @admin.action(description="Replay dead letters", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[Checkpoint]) -> None:
        for checkpoint in queryset:
            result = replay_dead_letters(checkpoint.name)[checkpoint.name]
            self.message_user(
                request,
                f"{checkpoint.name}: {result}",
                messages.WARNING
                if result.still_parked or result.locked_out
                else messages.SUCCESS,
            )


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "projection",
        "position",
        "stream_id",
        "event_type",
        "status",
        "attempts",
        "created_at",
    )
    list_filter = ("projection", "status", "event_type")
    search_fields = ("stream_id",)
    ordering = ("projection", "position")
    readonly_fields = [f.name for f in DeadLetter._meta.fields]
    actions = ("replay", "discard")

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("projections.replay_deadletter")

    def has_discard_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("projections.discard_deadletter")

    @admin.action(
        description="Replay (their projections, in order)", permissions=["replay"]
    )
    def replay(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        for name in sorted(set(queryset.values_list("projection", flat=True))):
            result = replay_dead_letters(name)[name]
            self.message_user(
                request,
                f"{name}: {result}",
                messages.WARNING
                if result.still_parked or result.locked_out
                else messages.SUCCESS,
            )

    @admin.action(description="Discard", permissions=["discard"])
    def discard(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        count = discard_dead_letters(queryset.values_list("pk", flat=True))
        self.message_user(request, f"Discarded {count} dead letter(s).")


@admin.register(ProductCatalogue)
class ProductCatalogueAdmin(ReadOnlyAdmin):
    list_display = ("sku", "name", "price_cents", "available", "position")
    # Trigram indexes on both (read_products_search_*): fast at any size.
    search_fields = ("sku", "name")
    search_help_text = "Part of a SKU or of a name, any case."
    list_per_page = 50
    ordering = ("name", "id")
    show_full_result_count = False


@admin.register(OrderSummary)
class OrderSummaryAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer_id", "status", "total_cents", "created_at")
    list_filter = ("status",)
    search_fields = ("=id",)
    search_help_text = "An exact order id."
    readonly_fields = ("timeline",)

    @admin.display(
        description="timeline (from the event store: each event, the state "
        "after it, what changed, and the command, user and trace that caused it)"
    )
    def timeline(self, obj: OrderSummary) -> str:
        return timeline_table(past.order_timeline(obj.id))


def timeline_table(steps: list[past.Step]) -> SafeString:
    """Render an order's timeline, oldest event first."""
    if not steps:
        return format_html("<p>{}</p>", "No events for this order.")
    users = dict(
        get_user_model()
        .objects.filter(pk__in={s.user_id for s in steps if s.user_id is not None})
        .values_list("pk", "username")
    )
    head = (
        "version",
        "event",
        "recorded",
        "what changed",
        "state after",
        "command",
        "user",
        "trace id",
    )
    rows = [
        (
            step.event.version,
            _event(step.event),
            step.event.recorded_at.isoformat(timespec="milliseconds"),
            _changes(step.changes),
            _state(step.state),
            _command(step.command_id),
            _user(step.user_id, users),
            format_html("<code>{}</code>", step.trace_id) if step.trace_id else "-",
        )
        for step in steps
    ]
    header = format_html_join("", "<th>{}</th>", ((cell,) for cell in head))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),)
            for row in rows
        ),
    )
    return format_html(
        '<table class="order-timeline"><thead><tr>{}</tr></thead>'
        "<tbody>{}</tbody></table>",
        header,
        body,
    )


def _event(event: eventstore.RecordedEvent) -> SafeString:
    url = reverse("admin:commands_app_storedevent_change", args=[event.position])
    return format_html('<a href="{}">#{}</a> {}', url, event.position, event.type)


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _changes(changes: list[tuple[str, Any, Any]]) -> SafeString:
    if not changes:
        return format_html("{}", "nothing")
    return format_html(
        "<ul>{}</ul>",
        format_html_join(
            "",
            "<li><b>{}</b>: {} &rarr; {}</li>",
            (
                (name, "-" if before is None else _compact(before), _compact(after))
                for name, before, after in changes
            ),
        ),
    )


def _state(state: dict[str, Any] | None) -> SafeString:
    if state is None:
        return format_html("{}", "-")
    shown = {k: v for k, v in state.items() if k not in past.UNTRACKED}
    return format_html(
        "{} {}<details><summary>all fields</summary><pre>{}</pre></details>",
        state.get("status"),
        state.get("total_cents"),
        json.dumps(shown, indent=2, sort_keys=True, default=str),
    )


def _command(command_id: str | None) -> SafeString:
    if not command_id:
        return format_html("{}", "-")
    url = reverse("admin:commands_app_commandrecord_change", args=[command_id])
    return format_html('<a href="{}">{}</a>', url, command_id)


def _user(user_id: int | None, users: dict[Any, str]) -> SafeString:
    if user_id is None:
        return format_html("{}", "-")
    name = users.get(user_id)
    if name is None:
        return format_html("#{} (deleted)", user_id)
    url = reverse("admin:auth_user_change", args=[user_id])
    return format_html('<a href="{}">{}</a> (#{})', url, name, user_id)


@admin.register(CustomerOrderHistory)
class CustomerOrderHistoryAdmin(ReadOnlyAdmin):
    list_display = ("order_id", "customer_id", "status", "total_cents", "placed_at")


@admin.register(SalesOrder)
class SalesOrderAdmin(ReadOnlyAdmin):
    list_display = ("order_id", "day", "revenue_cents", "units", "cancelled")


@admin.register(DailySales)
class DailySalesAdmin(ReadOnlyAdmin):
    list_display = ("day", "orders", "revenue_cents", "units", "cancelled_orders")
