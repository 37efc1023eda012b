"""Admin for commands (read-only, re-drive) and events (read-only, pretty JSON)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from knox.models import AuthToken

from . import effects
from .models import (
    CommandRecord,
    CommandStatus,
    Effect,
    GatewayLedgerEntry,
    StoredEvent,
)
from .services import enqueue
from .tokens import revoke_token


def _pretty(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


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
    search_fields = ("=id", "=aggregate_id", "idempotency_key")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    actions = ("redrive",)
    exclude = ("payload", "result", "error")
    readonly_fields = ("pretty_payload", "pretty_result", "pretty_error")
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

    @admin.action(
        description="Re-drive selected failed commands", permissions=["redrive"]
    )
    def redrive(self, request: HttpRequest, queryset: QuerySet[CommandRecord]) -> None:
        failed = list(queryset.filter(status=CommandStatus.FAILED))
        for record in failed:
            CommandRecord.objects.filter(
                pk=record.pk, status=CommandStatus.FAILED
            ).update(status=CommandStatus.ACCEPTED, attempt=0, error=None)
            enqueue(record)
        self.message_user(
            request, f"Re-drove {len(failed)} failed command(s).", messages.SUCCESS
        )

    def has_redrive_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser) or request.user.has_perm(
            "commands_app.change_commandrecord"
        )


@admin.register(StoredEvent)
class StoredEventAdmin(ReadOnlyAdmin):
    list_display = ("position", "type", "stream_id", "version", "recorded_at")
    list_filter = ("type",)
    search_fields = ("=stream_id",)
    exclude = ("data", "metadata")
    readonly_fields = ("pretty_data", "pretty_metadata")
    show_full_result_count = False

    @admin.display(description="data")
    def pretty_data(self, obj: StoredEvent) -> str:
        return _pretty(obj.data)

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
