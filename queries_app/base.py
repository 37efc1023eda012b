"""What every read endpoint shares: strict parameters, consistency and its header."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from projections.progress import reached, store_head
from throttles import ReadThrottle

from . import consistency, replicas
from .errors import ReadModelBehindError
from .output import RowPresenter, presenter
from .pagination import KeysetPagination
from .params import ReadQuery

READ_POSITION_HEADER = "X-Read-Position"
RETRY_AFTER_SECONDS = 1
# A replica that cannot be reached (or cancelled the query) sends the read to
# the primary instead of failing it.
REPLICA_ERRORS = (OperationalError, InterfaceError)

log = logging.getLogger(__name__)


class ReadApi(GenericAPIView):
    """A read over projection tables that honours `min_position`.

    After authentication and permissions, the query string is validated by
    `Query`, then the view waits for `min_position` if given. The checkpoint is
    read before the rows, so the rows reflect at least the position reported in
    the `X-Read-Position` header. With read replicas, the request reads one of
    them throughout, or the primary after a fallback (queries_app/replicas.py).
    """

    Query: ClassVar[type[ReadQuery]] = ReadQuery
    projections: ClassVar[tuple[str, ...]] = ()
    pagination_class: type[KeysetPagination] | None = KeysetPagination
    throttle_classes = (ReadThrottle,)
    # Replaced (never mutated) per request; empty while the schema is generated.
    params: dict[str, Any] = {}

    def dispatch(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        with replicas.pinned():
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        query = self.Query(data=request.query_params, context={"request": request})
        query.is_valid(raise_exception=True)
        self.params = dict(query.validated_data)
        self.check_consistency(self.params.get("min_position"))

    def check_consistency(self, min_position: int | None) -> None:
        """Wait until the read model has applied `min_position`, else refuse."""
        if min_position is not None and not self.applied(min_position):
            raise ReadModelBehindError(
                min_position=min_position,
                position=self.reflected_position(),
                retry_after=RETRY_AFTER_SECONDS,
            )
        try:
            self.read_position = self.reflected_position()
        except REPLICA_ERRORS as exc:
            if not self.fall_back(exc):
                raise
            self.read_position = self.reflected_position()

    def applied(self, min_position: int) -> bool:
        """Return whether the copy read has applied `min_position`, after waiting.

        A replica gets READ_REPLICA_MAX_WAIT_SECONDS; if it still lags (or
        fails), the request moves to the primary for the usual wait.
        """
        if replicas.is_replica(replicas.pinned_alias()):
            try:
                if consistency.wait_for_position(
                    self.projections,
                    min_position,
                    timeout=settings.READ_REPLICA_MAX_WAIT_SECONDS,
                    head=store_head,
                ):
                    return True
                replicas.use(replicas.PRIMARY)
            except REPLICA_ERRORS as exc:
                if not self.fall_back(exc):
                    raise
        return consistency.wait_for_position(
            self.projections, min_position, head=store_head
        )

    def fall_back(self, error: Exception) -> bool:
        """Move a request whose replica failed to the primary; False if on it."""
        alias = replicas.pinned_alias()
        if not replicas.is_replica(alias):
            return False
        log.warning("read replica %s failed, reading the primary: %s", alias, error)
        replicas.mark_failed(str(alias))
        replicas.use(replicas.PRIMARY)
        return True

    def reflected_position(self) -> int:
        return reached(self.projections).position

    @property
    def output(self) -> RowPresenter:
        """Return what turns rows into answers shaped by `serializer_class`."""
        return presenter(self.get_serializer_class())

    def page_response(self, queryset: QuerySet[Any]) -> Response:
        """Answer one page of `queryset`, each row shaped by `serializer_class`."""
        paginator = self.paginator
        if not isinstance(paginator, KeysetPagination):
            raise TypeError(f"{type(self).__name__} pages with KeysetPagination")
        output = self.output
        rows = paginator.paginate_values(
            queryset, output.columns, self.request, view=self
        )
        return paginator.get_paginated_response(output.many(rows))

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        position = getattr(self, "read_position", None)
        if position is not None and response.status_code < 400:
            response[READ_POSITION_HEADER] = str(position)
        return super().finalize_response(request, response, *args, **kwargs)
