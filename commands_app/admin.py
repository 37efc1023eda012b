"""Admin for commands (read-only, re-drive) and events (read-only, pretty JSON)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from .models import CommandRecord, StoredEvent
from .sweeper import redrive_failed


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
        count = redrive_failed(queryset.values_list("pk", flat=True))
        self.message_user(
            request, f"Re-drove {count} failed command(s).", messages.SUCCESS
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
