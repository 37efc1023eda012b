"""Payment as a process: the `charge` and `refund` effects.

`pay-order` appends `PaymentRequested` (the order is `payment_pending`) and
stays `running`; the `charge` effect it decides calls the gateway with the
payment's id as the idempotency key, then appends `PaymentCaptured` or
`PaymentDeclined` and finishes the command in one transaction (with the
effect marked done). A cancelled paid order decides a `refund` effect: the
gateway refunds with the refund's id as the key, and `OrderRefunded` records
what it refunded. A timeout or a gateway error is retried with the same key,
so a retried call never charges or refunds twice.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction

from observability import tracing

from . import effects, eventstore, execution, outbox
from .domain.errors import PaymentDeclinedError
from .domain.events import OrderCancelled, PaymentDeclined, PaymentRequested
from .domain.order import Order, order_stream
from .eventstore import ConcurrencyError, NewEvents, RecordedEvent
from .models import CommandRecord, CommandStatus, Effect
from .payments import Charge, get_gateway

CHARGE, REFUND = "charge", "refund"
# Refund ids are derived from the cancelling event, so the key is stable.
REFUND_NAMESPACE = UUID("6f1c1d1e-8a0b-4c55-9d1e-3f1bd0c2a7a1")


def charge_key(kind: str, position: int, data: dict[str, Any]) -> str:
    return str(data["payment_id"])


def refund_key(kind: str, position: int, data: dict[str, Any]) -> str:
    return str(uuid.uuid5(REFUND_NAMESPACE, f"{data['order_id']}:{position}"))


def load_order(order_id: UUID) -> Order:
    stream = order_stream(order_id)
    return Order.from_events(order_id, eventstore.load_streams([stream])[stream])


def perform_charge(effect: Effect, event: RecordedEvent) -> None:
    """Charge the card for a requested payment; append and finish its outcome."""
    requested = event.to_domain()
    assert isinstance(requested, PaymentRequested)
    payment_id = str(requested.payment_id)
    if not load_order(requested.order_id).is_awaiting(payment_id):
        return  # an earlier delivery recorded the outcome
    token = card_token(event.metadata.get("command_id"))
    outcome: Charge | PaymentDeclinedError
    with tracing.span("gateway.charge", attributes={"payment.id": payment_id}):
        try:
            outcome = get_gateway().charge(
                token=token,
                amount_cents=requested.amount_cents,
                idempotency_key=payment_id,
                order_id=requested.order_id,
            )
        except PaymentDeclinedError as declined:
            outcome = declined
    record(effect, event, lambda order: _charge_outcome(order, requested, outcome))


def _charge_outcome(
    order: Order, requested: PaymentRequested, outcome: Charge | PaymentDeclinedError
) -> bool:
    payment_id = str(requested.payment_id)
    if not order.is_awaiting(payment_id):
        return False
    if isinstance(outcome, PaymentDeclinedError):
        order.decline(
            payment_id=payment_id,
            decline_code=str(outcome.details.get("decline_code", "card_declined")),
        )
    else:
        order.capture(
            payment_id=payment_id,
            amount_cents=outcome.amount_cents,
            card_last4=requested.card_last4,
            reference=outcome.reference,
        )
    return True


def card_token(command_id: str | None) -> str:
    """Return the card token of the pay-order command (dropped once it is final)."""
    payload = (
        CommandRecord.objects.filter(pk=str(command_id))
        .values_list("payload", flat=True)
        .first()
    )
    token = ((payload or {}).get("card") or {}).get("token")
    if not token:
        raise LookupError(f"pay-order {command_id} has no card token any more")
    return str(token)


def perform_refund(effect: Effect, event: RecordedEvent) -> None:
    """Refund what a cancelled order was paid; append `OrderRefunded`."""
    cancelled = event.to_domain()
    assert isinstance(cancelled, OrderCancelled)
    order = load_order(cancelled.order_id)
    if order.refunded_cents >= cancelled.refund_cents:
        return  # an earlier delivery recorded the refund
    with tracing.span(
        "gateway.refund", attributes={"refund.id": effect.idempotency_key}
    ):
        refund = get_gateway().refund(
            charge_reference=order.payment_reference,
            amount_cents=cancelled.refund_cents,
            idempotency_key=effect.idempotency_key,
        )

    def refunded(order: Order) -> bool:
        if order.refunded_cents >= cancelled.refund_cents:
            return False
        order.refund(
            refund_id=effect.idempotency_key,
            amount_cents=refund.amount_cents,
            reference=refund.reference,
        )
        return True

    record(effect, event, refunded)


def record(effect: Effect, cause: RecordedEvent, decide: Any) -> None:
    """Append what `decide(order)` records, finish the command, complete the effect.

    One transaction: the effect is marked done (fenced on its attempt) with
    the outcome's events and the command's final status, or none of them is.
    A lost race on the order's stream decides again on the reloaded order.
    """
    order_id = UUID(cause.data["order_id"])
    for _ in range(settings.COMMAND_CONFLICT_RETRIES):
        order = load_order(order_id)
        try:
            with transaction.atomic():
                effects.complete(effect)
                if not decide(order):
                    return
                positions = eventstore.append(
                    [
                        NewEvents(
                            order.stream, order.version, tuple(order.pending_events)
                        )
                    ],
                    metadata=outcome_metadata(effect, cause),
                )
                finish_command(cause, order, position=max(positions))
            return
        except ConcurrencyError:
            effect.status = ""  # rolled back: still pending
            continue
    raise ConcurrencyError(f"order {order_id} kept changing")


def outcome_metadata(effect: Effect, cause: RecordedEvent) -> dict[str, Any]:
    meta = cause.metadata
    return {
        "command_id": meta.get("command_id"),
        "command_type": meta.get("command_type"),
        "correlation_id": meta.get("correlation_id"),
        "causation_id": f"event:{cause.position}",
        "user_id": meta.get("user_id"),
        "recorded_by": f"effects.{effect.kind}",
        "effect_id": effect.id,
        "traceparent": tracing.current_traceparent() or effect.traceparent,
    }


def finish_command(cause: RecordedEvent, order: Order, *, position: int) -> None:
    """Finish the pay-order command that requested the payment, if it waits."""
    if cause.type != PaymentRequested.type_name:
        return
    record = (
        CommandRecord.objects.select_for_update()
        .filter(pk=str(cause.metadata.get("command_id")), status=CommandStatus.RUNNING)
        .first()
    )
    if record is None:
        return
    outcome = order.pending_events[-1]
    if isinstance(outcome, PaymentDeclined):
        error = PaymentDeclinedError(
            "The card was declined.", decline_code=outcome.decline_code
        )
        execution.finish(
            record,
            record.attempt,
            status=CommandStatus.REJECTED,
            error=error.as_dict(),
            position=position,
        )
        return
    execution.finish(
        record,
        record.attempt,
        status=CommandStatus.SUCCEEDED,
        result={"payment_id": order.payment_id, "amount_cents": order.paid_cents},
        position=position,
    )


def register() -> None:
    """Register the `charge` and `refund` effect kinds."""
    outbox.register(
        outbox.EffectKind(
            name=CHARGE,
            event_types=frozenset({PaymentRequested.type_name}),
            perform=perform_charge,
            key=charge_key,
        )
    )
    outbox.register(
        outbox.EffectKind(
            name=REFUND,
            event_types=frozenset({OrderCancelled.type_name}),
            perform=perform_refund,
            key=refund_key,
            applies=lambda data: data["refund_cents"] > 0,
        )
    )
