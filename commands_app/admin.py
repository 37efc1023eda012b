"""Admin for commands (read-only, explained, re-drive) and events (searchable)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC
from typing import Any
from uuid import UUID

from django.contrib import admin, messages
from django.db import OperationalError
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KT
from django.http import HttpRequest
from django.urls import reverse
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from knox.models import AuthToken

from api.tokens import revoke_token

from . import effects, explain, pii
from .domain.events import EVENT_TYPES
from .models import (
    CommandRecord,
    Effect,
    GatewayLedgerEntry,
    StoredEvent,
)
from .sweeper import redrive_failed

# Events listed on a command's page; the event list, filtered, has them all.
EVENTS_SHOWN = 50


def _pretty(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


def _table(head: tuple[str, ...], rows: list[tuple[Any, ...]]) -> SafeString:
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
        "<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", header, body
    )


def event_link(position: int) -> str:
    url = reverse("admin:commands_app_storedevent_change", args=[position])
    return format_html('<a href="{}">#{}</a>', url, position)


def command_link(command_id: Any) -> str:
    url = reverse("admin:commands_app_commandrecord_change", args=[command_id])
    return format_html('<a href="{}">{}</a>', url, command_id)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CommandRecord)
class CommandRecordAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "status", "user", "progress", "attempt", "created_at")
    list_filter = ("type", "status")
    search_fields = ("=id", "=aggregate_id", "idempotency_key", "=correlation_id")
    search_help_text = "A command id, aggregate id, idempotency key or correlation id."
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    actions = ("redrive",)
    exclude = ("payload", "result", "error", "traceparent")
    readonly_fields = (
        "pretty_payload",
        "pretty_result",
        "pretty_error",
        "trace",
        "events",
        "projections",
        "pushes",
        "effects",
    )
    show_full_result_count = False

    @admin.display(description="payload (card numbers are never stored)")
    def pretty_payload(self, obj: CommandRecord) -> str:
        return _pretty(obj.payload)

    @admin.display(description="result")
    def pretty_result(self, obj: CommandRecord) -> str:
        return _pretty(obj.result)

    @admin.display(description="error")
    def pretty_error(self, obj: CommandRecord) -> str:
        return _pretty(obj.error)

    @admin.display(description="trace id")
    def trace(self, obj: CommandRecord) -> str:
        found = explain.trace_id(obj)
        if found is None:
            return "not traced (no traceparent)"
        return format_html(
            "<code>{}</code> (traceparent <code>{}</code>)", found, obj.traceparent
        )

    @admin.display(description="events")
    def events(self, obj: CommandRecord) -> str:
        events = explain.command_events(obj)
        rows = [
            (event_link(e.position), e.type, e.stream_id, e.version, e.recorded_at)
            for e in events.defer("data")[:EVENTS_SHOWN]
        ]
        if not rows:
            return "No events (nothing appended)."
        # An import appends one event per product: show the first, count them all.
        count = len(rows) if len(rows) < EVENTS_SHOWN else events.count()
        url = reverse("admin:commands_app_storedevent_changelist")
        return format_html(
            '{}<p><a href="{}?command={}">All {} in the event list</a></p>',
            _table(("position", "type", "stream", "version", "recorded"), rows),
            url,
            obj.id,
            count,
        )

    @admin.display(description="applied by the projections")
    def projections(self, obj: CommandRecord) -> str:
        try:
            progress = explain.projection_progress(obj)
        except OperationalError as exc:
            # The read database is another server's or pool's: while it does
            # not answer, the write side's page still shows the rest.
            return format_html("The read database did not answer: {}", exc)
        if not progress:
            return "No events to apply."
        return _table(
            ("projection", f"has applied position {obj.position}"),
            [(name, "yes" if done else "not yet") for name, done in progress.items()],
        )

    @admin.display(description="pushes")
    def pushes(self, obj: CommandRecord) -> str:
        return format_html(
            "status_seq <strong>{}</strong>: one push per status change and one "
            "when every projection has applied its events, each at most once. "
            "No log of single pushes is kept; the push metrics "
            "(<code>cqrs_pushes_total</code> by message type and outcome) count "
            "sent and dropped ones over all commands.",
            obj.status_seq,
        )

    @admin.display(description="effects outside the store")
    def effects(self, obj: CommandRecord) -> str:
        rows = [
            (e["kind"], e["status"], e["key"], e["attempts"], e["last_error"][:120])
            for e in explain.command_effects(obj)
        ]
        if not rows:
            return "None recorded."
        return _table(
            ("kind", "status", "idempotency key", "attempts", "last error"), rows
        )

    @admin.action(
        description="Re-drive selected failed commands", permissions=["redrive"]
    )
    def redrive(self, request: HttpRequest, queryset: QuerySet[CommandRecord]) -> None:
        count = redrive_failed(queryset.values_list("pk", flat=True))
        self.message_user(
            request, f"Re-drove {count} failed command(s).", messages.SUCCESS
        )

    def has_redrive_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser) or request.user.has_perm(
            "commands_app.change_commandrecord"
        )


class InputFilter(admin.SimpleListFilter):
    """A list filter with a text box instead of links."""

    template = "admin/input_filter.html"
    placeholder = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # One placeholder choice, or Django hides the filter.
        return [("", "")]

    def choices(self, changelist: Any) -> Iterator[Any]:
        yield {
            "parameter_name": self.parameter_name,
            "value": self.value(),
            "placeholder": self.placeholder,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "query_parts": [
                (name, value)
                for name, values in self.request.GET.lists()
                if name not in (self.parameter_name, "p")
                for value in values
            ],
        }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        value = (self.value() or "").strip()
        return self.filter(queryset, value) if value else queryset

    def filter(self, queryset: QuerySet[Any], value: str) -> QuerySet[Any]:
        raise NotImplementedError


def _uuid(value: str) -> str | None:
    try:
        return str(UUID(value))
    except ValueError:
        return None


class StreamFilter(InputFilter):
    title = "stream"
    parameter_name = "stream"
    placeholder = "product-… or order-…"

    def filter(self, queryset: QuerySet[Any], value: str) -> QuerySet[Any]:
        return queryset.filter(stream_id=value)


class CustomerFilter(InputFilter):
    title = "customer (user id)"
    parameter_name = "customer"
    placeholder = "42"

    def filter(self, queryset: QuerySet[Any], value: str) -> QuerySet[Any]:
        if not value.isdigit():
            return queryset.none()
        return queryset.alias(
            acting_user=KT("metadata__user_id"), data_customer=KT("data__customer_id")
        ).filter(Q(acting_user=value) | Q(data_customer=value))


class CorrelationFilter(InputFilter):
    title = "correlation id"
    parameter_name = "correlation"
    placeholder = "uuid"

    def filter(self, queryset: QuerySet[Any], value: str) -> QuerySet[Any]:
        key = _uuid(value)
        if key is None:
            return queryset.none()
        return queryset.alias(correlation_id=KT("metadata__correlation_id")).filter(
            correlation_id=key
        )


class CommandFilter(InputFilter):
    title = "command id"
    parameter_name = "command"
    placeholder = "uuid"

    def filter(self, queryset: QuerySet[Any], value: str) -> QuerySet[Any]:
        key = _uuid(value)
        if key is None:
            return queryset.none()
        return queryset.alias(command_id=KT("metadata__command_id")).filter(
            command_id=key
        )


def _instant(value: str) -> Any:
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            return None
        moment = parse_datetime(f"{day.isoformat()}T00:00:00")
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


class RecordedAfterFilter(InputFilter):
    title = "recorded from (ISO date or time, UTC)"
    parameter_name = "recorded_from"
    placeholder = "2026-05-01T12:00"

    def filter(self, queryset: QuerySet[Any], value: str) -> QuerySet[Any]:
        moment = _instant(value)
        return (
            queryset.none()
            if moment is None
            else queryset.filter(recorded_at__gte=moment)
        )


class RecordedBeforeFilter(InputFilter):
    title = "recorded before (ISO date or time, UTC)"
    parameter_name = "recorded_before"
    placeholder = "2026-05-02"

    def filter(self, queryset: QuerySet[Any], value: str) -> QuerySet[Any]:
        moment = _instant(value)
        return (
            queryset.none()
            if moment is None
            else queryset.filter(recorded_at__lt=moment)
        )


class EventTypeFilter(admin.SimpleListFilter):
    """The registered event types (no DISTINCT over the whole store)."""

    title = "type"
    parameter_name = "type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in sorted(EVENT_TYPES)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        value = self.value()
        return queryset.filter(type=value) if value else queryset


@admin.register(StoredEvent)
class StoredEventAdmin(ReadOnlyAdmin):
    list_display = ("position", "type", "stream_id", "version", "recorded_at", "cause")
    list_filter = (
        EventTypeFilter,
        StreamFilter,
        CustomerFilter,
        CorrelationFilter,
        CommandFilter,
        RecordedAfterFilter,
        RecordedBeforeFilter,
    )
    search_fields = ("=stream_id",)
    search_help_text = (
        "An exact stream id; the filters narrow by type, customer, "
        "correlation id, command and time."
    )
    exclude = ("data", "metadata")
    readonly_fields = ("cause", "pretty_data", "pretty_metadata")
    show_full_result_count = False

    @admin.display(description="caused by command")
    def cause(self, obj: StoredEvent) -> str:
        command_id = (obj.metadata or {}).get("command_id")
        if not command_id:
            return "-"
        return command_link(command_id)

    @admin.display(
        description="data (personal fields decrypted; [erased] once forgotten)"
    )
    def pretty_data(self, obj: StoredEvent) -> str:
        return _pretty(pii.reveal_one(obj.data))

    @admin.display(description="metadata")
    def pretty_metadata(self, obj: StoredEvent) -> str:
        return _pretty(obj.metadata)


# knox registers its own admin for tokens, whose change form shows the start of
# the token; this one shows who holds a token and until when, and no secret.
admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("user", "created", "expiry")
    list_select_related = ("user",)
    search_fields = ("user__username",)
    fields = ("user", "created", "expiry")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: AuthToken) -> None:
        revoke_token(obj, request=request)

    def delete_queryset(
        self, request: HttpRequest, queryset: QuerySet[AuthToken]
    ) -> None:
        for token in queryset.select_related("user"):
            revoke_token(token, request=request)


@admin.register(Effect)
class EffectAdmin(ReadOnlyAdmin):
    """Effects (charges, refunds, ...): parked ones wait for an operator's retry."""

    list_display = (
        "id",
        "kind",
        "stream_id",
        "status",
        "attempts",
        "due_at",
        "created_at",
        "short_error",
    )
    list_filter = ("status", "kind")
    search_fields = ("=stream_id", "=idempotency_key")
    actions = ("retry",)
    show_full_result_count = False

    @admin.display(description="last error")
    def short_error(self, obj: Effect) -> str:
        return obj.last_error[:120]

    @admin.action(
        description="Retry selected parked effects (a fresh attempt budget)",
        permissions=["retry"],
    )
    def retry(self, request: HttpRequest, queryset: QuerySet[Effect]) -> None:
        count = effects.retry(queryset.values_list("pk", flat=True))
        self.message_user(
            request, f"Retrying {count} parked effect(s).", messages.SUCCESS
        )

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser) or request.user.has_perm(
            "commands_app.change_effect"
        )


@admin.register(GatewayLedgerEntry)
class GatewayLedgerEntryAdmin(ReadOnlyAdmin):
    """The simulated gateway's ledger, what the money invariant reconciles against."""

    list_display = (
        "id",
        "kind",
        "outcome",
        "amount_cents",
        "order_id",
        "reference",
        "created_at",
    )
    list_filter = ("kind", "outcome")
    search_fields = ("=order_id", "=idempotency_key", "=reference")
    show_full_result_count = False
