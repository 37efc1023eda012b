"""What every read endpoint shares: strict parameters, consistency and its header."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import QuerySet
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from throttles import ReadThrottle

from . import consistency
from .errors import ReadModelBehindError
from .output import RowPresenter, presenter
from .pagination import KeysetPagination
from .params import ReadQuery

READ_POSITION_HEADER = "X-Read-Position"
RETRY_AFTER_SECONDS = 1


class ReadApi(GenericAPIView):
    """A read over projection tables that honours `min_position`.

    After authentication and permissions, the query string is validated by
    `Query`, then the view waits for `min_position` if given. The checkpoint is
    read before the rows, so the rows reflect at least the position reported in
    the `X-Read-Position` header.
    """

    Query: ClassVar[type[ReadQuery]] = ReadQuery
    projections: ClassVar[tuple[str, ...]] = ()
    pagination_class: type[KeysetPagination] | None = KeysetPagination
    throttle_classes = (ReadThrottle,)
    # Replaced (never mutated) per request; empty while the schema is generated.
    params: dict[str, Any] = {}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        query = self.Query(data=request.query_params, context={"request": request})
        query.is_valid(raise_exception=True)
        self.params = dict(query.validated_data)
        self.check_consistency(self.params.get("min_position"))

    def check_consistency(self, min_position: int | None) -> None:
        """Wait until the read model has applied `min_position`, else refuse."""
        if min_position is not None and not consistency.wait_for_position(
            self.projections, min_position, head=consistency.store_head
        ):
            raise ReadModelBehindError(
                min_position=min_position,
                position=self.reflected_position(),
                retry_after=RETRY_AFTER_SECONDS,
            )
        self.read_position = self.reflected_position()

    def reflected_position(self) -> int:
        return consistency.reflected_point(self.projections).position

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
