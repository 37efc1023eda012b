"""The command API: accept a command (202) and report its status."""

from __future__ import annotations

import re
import threading
from typing import Any
from uuid import UUID

from django.conf import settings
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import ApiError

from . import acceptance, openapi
from .models import CommandRecord
from .payments import get_gateway
from .registry import COMMANDS, CommandSpec, Who, to_json
from .serializers import CommandAcceptedOutput, CommandStatusOutput
from .status import status_object, status_url
from .throttling import CommandSubmitThrottle, ReadThrottle

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}\Z")
PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait=(\d{1,4})(?:$|[,;\s])")
_waiters = threading.BoundedSemaphore(settings.COMMAND_MAX_CONCURRENT_WAITS)


def _error(code: str, message: str, http_status: int, **details: Any) -> ApiError:
    return ApiError(code, message, http_status=http_status, details=details)


class SubmitCommandSchema(AutoSchema):
    """The OpenAPI operation of a command's endpoint, read from its spec."""

    def spec(self) -> CommandSpec[Any]:
        spec: CommandSpec[Any] = self.view.spec  # type: ignore[attr-defined]
        return spec

    def get_operation_id(self) -> str:
        return self.spec().name.replace("-", "_")

    def get_summary(self) -> str:
        return self.spec().summary

    def get_description(self) -> str:  # type: ignore[override]
        spec = self.spec()
        refusals = ", ".join(f"`{code}`" for code in spec.refusals) or "none"
        return (
            f"{spec.summary}\n\nAnswers 202 at once; the worker's refusal codes "
            f"(in the status's `error.code`): {refusals}. Send `Prefer: wait=N` to "
            f"wait up to N seconds (capped) for the final status (then 200)."
        )

    def get_request_serializer(self) -> Any:
        return self.spec().input

    def get_response_serializers(self) -> Any:
        return {
            202: CommandAcceptedOutput,
            200: OpenApiResponse(
                CommandStatusOutput, "Finished within `Prefer: wait`."
            ),
            **openapi.SUBMIT_REFUSALS,
        }

    def get_override_parameters(self) -> list[Any]:
        return [
            OpenApiParameter(
                "Idempotency-Key",
                {"type": "string", "pattern": "^[!-~]{1,255}$"},
                OpenApiParameter.HEADER,
                description="1 to 255 printable ASCII characters; per user.",
            ),
            OpenApiParameter("Prefer", str, OpenApiParameter.HEADER),
        ]


class SubmitCommandApi(APIView):
    """Accept a command for asynchronous execution: one view per `CommandSpec`.

    `urls.py` routes `commands/<name>/` to `SubmitCommandApi.as_view(spec=...)`
    for every spec in the registry; the schema comes from the spec too.
    """

    throttle_classes = (CommandSubmitThrottle,)
    schema = SubmitCommandSchema()
    spec: CommandSpec[Any] | None = None  # set by as_view(spec=...)

    # OPTIONS answers the command's own name and summary (DRF reads these).
    @property
    def name(self) -> str | None:
        if self.spec is None:
            return None
        return " ".join(part.title() for part in self.spec.name.split("-")) + " Api"

    @property
    def description(self) -> str | None:
        return None if self.spec is None else self.spec.summary

    def post(self, request: Request) -> Response:
        spec = self.spec
        assert spec is not None
        # The role is checked before the body is even parsed: a customer's
        # body for a staff command (up to 50,000 import items) costs nothing.
        self.check_role(spec, request)
        serializer = spec.input(data=request.data)
        serializer.is_valid(raise_exception=True)
        payload = to_json(serializer.validated_data)
        if spec.creates:
            payload.setdefault(spec.creates, acceptance.new_id())
        field = spec.aggregate_field()
        aggregate_id = UUID(payload[field]) if field else None
        if spec.who in (Who.ORDER_OWNER, Who.ORDER_OWNER_OR_STAFF, Who.STAFF) and (
            spec.refers_to == "order_id"
        ):
            assert aggregate_id is not None
            self.check_order_access(spec, request, aggregate_id)
        if "card" in payload:
            payload["card"] = self.tokenize(payload["card"])
        record, _created = self.perform_submit(spec, request, payload, aggregate_id)
        return self.respond(request, record)

    def check_role(self, spec: CommandSpec, request: Request) -> None:
        if spec.who is Who.STAFF and not request.user.is_staff:
            raise _error("permission_denied", f"Only staff may send {spec.name}.", 403)

    def check_order_access(
        self, spec: CommandSpec, request: Request, order_id: UUID
    ) -> None:
        """Check ownership on the write model; another user's order is absent."""
        owner = acceptance.order_owner(order_id)
        user = request.user
        visible = owner is not None and (owner == user.pk or user.is_staff)
        if not visible:
            raise _error(
                "order_not_found", "No such order.", 404, order_id=str(order_id)
            )
        if spec.who is Who.ORDER_OWNER and owner != user.pk:
            raise _error(
                "permission_denied", "Only the order's customer can pay it.", 403
            )

    @staticmethod
    def tokenize(card: dict[str, Any]) -> dict[str, Any]:
        token = get_gateway().tokenize(
            number=card["number"],
            exp_month=card["exp_month"],
            exp_year=card["exp_year"],
        )
        return {
            "token": token.token,
            "last4": token.last4,
            "exp_month": card["exp_month"],
            "exp_year": card["exp_year"],
        }

    def perform_submit(
        self,
        spec: CommandSpec,
        request: Request,
        payload: dict[str, Any],
        aggregate_id: UUID | None,
    ) -> tuple[CommandRecord, bool]:
        key = request.headers.get("Idempotency-Key")
        if key is not None and not IDEMPOTENCY_KEY.match(key):
            raise _error(
                "validation_error",
                "Idempotency-Key must be 1 to 255 printable ASCII characters.",
                400,
            )
        try:
            return acceptance.submit(
                spec,
                user_id=request.user.pk,  # type: ignore[arg-type]
                payload=payload,
                aggregate_id=aggregate_id,
                idempotency_key=key,
                body_hash=acceptance.request_hash(spec.name, request.data),
            )
        except acceptance.IdempotencyMismatchError as exc:
            raise _error(
                "idempotency_key_reused",
                "This Idempotency-Key was used with another request body.",
                422,
                command_id=str(exc),
            ) from None

    def respond(self, request: Request, record: CommandRecord) -> Response:
        seconds = self.requested_wait(request)
        headers = {"Location": status_url(record)}
        if seconds and _waiters.acquire(blocking=False):
            try:
                record = acceptance.wait_for_final(record.id, seconds)
            finally:
                _waiters.release()
            headers["Preference-Applied"] = f"wait={seconds:g}"
            if record.is_final:
                return Response(status_object(record), headers=headers)
        body = {
            "id": str(record.id),
            "type": record.type,
            "status": record.status,
            "status_url": status_url(record),
            "aggregate_id": str(record.aggregate_id) if record.aggregate_id else None,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED, headers=headers)

    @staticmethod
    def requested_wait(request: Request) -> float:
        match = PREFER_WAIT.search(request.headers.get("Prefer", "")[:200])
        if not match:
            return 0.0
        return min(float(match.group(1)), settings.COMMAND_MAX_WAIT_SECONDS)


@extend_schema(exclude=True)
class UnknownCommandApi(APIView):
    """Answer 404 for a name that is neither a command nor a command's id."""

    throttle_classes = (CommandSubmitThrottle,)

    def post(self, request: Request, name: str) -> Response:
        raise _error(
            "unknown_command",
            f"There is no command {name!r}.",
            404,
            commands=sorted(COMMANDS),
        )

    def get(self, request: Request, name: str) -> Response:
        raise _error("not_found", "No such command.", 404)


class CommandStatusApi(APIView):
    """Report a command's status to its issuer (or staff)."""

    throttle_classes = (ReadThrottle,)

    @extend_schema(
        operation_id="command_status",
        summary="A command's status",
        responses={200: CommandStatusOutput, **openapi.STATUS_REFUSALS},
    )
    def get(self, request: Request, command_id: UUID) -> Response:
        record = CommandRecord.objects.filter(pk=command_id).first()
        if record is None or not (
            record.user_id == request.user.pk or request.user.is_staff
        ):
            raise _error("not_found", "No such command.", 404)
        return Response(status_object(record))
