"""Keyset cursor pagination over (ordering field, id), safe against forged cursors."""

from __future__ import annotations

import binascii
import json
from base64 import urlsafe_b64decode, urlsafe_b64encode
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, Q, QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

MAX_PAGE_SIZE = 100
MAX_CURSOR_LENGTH = 1024
BIGINT = 2**63 - 1


@dataclass(frozen=True)
class Cursor:
    """A place between two rows: the key of the row beside it, and a direction."""

    key: tuple[Any, Any]
    reverse: bool = False


def _invalid(message: str) -> ValidationError:
    return ValidationError({"cursor": [message]})


class KeysetPagination(CursorPagination):
    """Page by the view's ordering plus the primary key as a unique tiebreaker.

    DRF's cursor stores only the first ordering field and an offset for ties, which
    repeats or drops rows when more than `offset_cutoff` rows share a value (many
    products at one price). This cursor stores the full key and filters with a
    row comparison, so every page is one indexed query whatever its depth.
    """

    page_size = 20
    page_size_query_param = "page_size"
    page_size_query_description = f"Rows per page (1 to {MAX_PAGE_SIZE})."
    max_page_size = MAX_PAGE_SIZE
    ordering = "id"
    template = None

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or len(raw) > 6 or int(raw) < 1:
            raise ValidationError(
                {"page_size": [f"A whole number from 1 to {MAX_PAGE_SIZE}."]}
            )
        return min(int(raw), MAX_PAGE_SIZE)

    def get_ordering(
        self, request: Request, queryset: QuerySet[Any], view: APIView | None
    ) -> tuple[str, ...]:
        field = getattr(view, "ordering_field", None) or self.ordering
        return (field,)

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: APIView | None = None
    ) -> list[Any]:
        self.request = request
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        ordering = self.get_ordering(request, queryset, view)[0]
        self.model = queryset.model
        self.field = ordering.lstrip("-")
        self.descending = ordering.startswith("-")
        cursor = self.decode(request)
        backwards = cursor is not None and cursor.reverse
        sign = "-" if self.descending != backwards else ""
        queryset = queryset.order_by(f"{sign}{self.field}", f"{sign}pk")
        if cursor is not None:
            queryset = queryset.filter(self.after(cursor.key, descending=bool(sign)))
        rows = list(queryset[: self.page_size + 1])
        more = len(rows) > self.page_size
        page = rows[: self.page_size]
        if backwards:
            page.reverse()
        self.page = page
        self.next_cursor, self.previous_cursor = self.neighbours(
            page, cursor, more=more
        )
        return page

    def paginate_values(
        self,
        queryset: QuerySet[Any],
        columns: Sequence[str],
        request: Request,
        view: APIView | None = None,
    ) -> list[dict[str, Any]]:
        """Return a page of `queryset.values(*columns)` rows (plus the key's)."""
        field = self.get_ordering(request, queryset, view)[0].lstrip("-")
        pk = queryset.model._meta.pk.attname
        names = dict.fromkeys((*columns, pk if field == "pk" else field, pk))
        return self.paginate_queryset(queryset.values(*names), request, view)

    def neighbours(
        self, page: list[Any], cursor: Cursor | None, *, more: bool
    ) -> tuple[Cursor | None, Cursor | None]:
        """Return the cursors of the pages after and before `page`."""
        if not page:
            return None, None
        first, last = self.key_of(page[0]), self.key_of(page[-1])
        if cursor is not None and cursor.reverse:
            return Cursor(last), Cursor(first, reverse=True) if more else None
        following = Cursor(last) if more else None
        return following, Cursor(first, reverse=True) if cursor else None

    def after(self, key: tuple[Any, Any], *, descending: bool) -> Q:
        """Return rows strictly after `key` in the query's order."""
        value, pk = key
        op = "lt" if descending else "gt"
        return Q(**{f"{self.field}__{op}": value}) | Q(
            **{self.field: value, f"pk__{op}": pk}
        )

    def key_of(self, row: Model | dict[str, Any]) -> tuple[Any, Any]:
        if isinstance(row, dict):
            pk = self.model._meta.pk.attname
            return (row[pk if self.field == "pk" else self.field], row[pk])
        return (getattr(row, self.field), row.pk)

    # --- Cursor text --------------------------------------------------------------

    def encode(self, cursor: Cursor | None) -> str | None:
        if cursor is None:
            return None
        value, pk = cursor.key
        if isinstance(value, date | datetime):
            value = value.isoformat()
        text = json.dumps([str(value), str(pk), int(cursor.reverse)])
        token = urlsafe_b64encode(text.encode()).decode().rstrip("=")
        return replace_query_param(str(self.base_url), self.cursor_query_param, token)

    def decode(self, request: Request) -> Cursor | None:
        token = request.query_params.get(self.cursor_query_param)
        if token is None:
            return None
        if len(token) > MAX_CURSOR_LENGTH:
            raise _invalid("The cursor is too long.")
        try:
            raw = urlsafe_b64decode(token + "=" * (-len(token) % 4))
            value, pk, reverse = json.loads(raw.decode("utf-8"))
        except (binascii.Error, UnicodeError, ValueError, TypeError) as exc:
            raise _invalid("The cursor is not valid.") from exc
        if not (isinstance(value, str) and isinstance(pk, str)) or reverse not in (
            0,
            1,
        ):
            raise _invalid("The cursor is not valid.")
        return Cursor(
            (self.parse(self.field, value), self.parse("pk", pk)), bool(reverse)
        )

    def parse(self, name: str, text: str) -> Any:
        """Turn cursor text into a value of the model field, or refuse it."""
        field = (
            self.model._meta.pk if name == "pk" else self.model._meta.get_field(name)
        )
        if "\x00" in text:
            raise _invalid("The cursor is not valid.")
        try:
            text.encode("utf-8")
            value = field.to_python(text)
        except (DjangoValidationError, UnicodeError, ValueError) as exc:
            raise _invalid("The cursor is not valid.") from exc
        if isinstance(value, int) and not -BIGINT <= value <= BIGINT:
            raise _invalid("The cursor is not valid.")
        if isinstance(value, datetime) and value.tzinfo is None:
            raise _invalid("The cursor is not valid.")
        return value

    # --- Response -----------------------------------------------------------------

    def get_next_link(self) -> str | None:
        return self.encode(self.next_cursor)

    def get_previous_link(self) -> str | None:
        return self.encode(self.previous_cursor)

    def get_paginated_response(self, data: Sequence[Any]) -> Response:
        return Response(
            {
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )
