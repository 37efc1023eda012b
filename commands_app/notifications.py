"""Customer e-mails about their orders, one per committed event that warrants one.

`send_for_event` is an effect: the effects mechanism calls it after the event is
committed, at least once. SMTP honours no idempotency key, so every e-mail
carries a Message-ID derived from the event (stream and version): a redelivery
sends the very same Message-ID, which mail clients and archives use to drop
the duplicate. A transport error is raised, never swallowed, so the caller
retries.

Mapped by stored type name, not by event class, so that a type is covered as
soon as it exists; `data` is read as stored (JSON, upcast), and the order's
customer and lines come from the order's first event (`order.placed.v2`, or v1
read as v2): staff may ship or cancel, so the issuer of a later event is not
the recipient.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.core.mail import EmailMultiAlternatives
from django.db.models import Field
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string

from api.prepared import fetch_one

from . import eventstore, outbox
from .domain.events import (
    OrderLinesChanged,
    OrderPlaced,
    ShippingAddressChanged,
    event_to_data,
)
from .eventstore import RecordedEvent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Email:
    """Which templates render the e-mail for one event type."""

    template: str
    subject: str


# Stored type name -> the e-mail it sends. A type not listed sends nothing.
EMAILS: dict[str, Email] = {
    # Stored `order.placed.v1` events are read (and delivered) as v2.
    "order.placed.v2": Email("order_placed", "Your order {order_ref} is placed"),
    # The first payment flow's event; the payment process records captures.
    "order.paid.v1": Email("order_paid", "Payment received for order {order_ref}"),
    "order.payment_captured.v1": Email(
        "order_paid", "Payment received for order {order_ref}"
    ),
    "order.payment_declined.v1": Email(
        "payment_declined", "Payment declined for order {order_ref}"
    ),
    "order.shipped.v1": Email("order_shipped", "Your order {order_ref} has shipped"),
    "order.cancelled.v1": Email(
        "order_cancelled", "Your order {order_ref} is cancelled"
    ),
    "order.refunded.v1": Email("order_refunded", "Refund for order {order_ref}"),
}

ORDER_STREAM_PREFIX = "order-"
EFFECT_KIND = "email"
CURRENCY = "EUR"


def register() -> None:
    """Register the `email` effect kind: one e-mail per event that warrants one."""
    outbox.register(
        outbox.EffectKind(
            name=EFFECT_KIND,
            event_types=frozenset(EMAILS),
            perform=lambda effect, event: send_for_event(event),
        )
    )


def send_for_event(event: RecordedEvent) -> None:
    """Send the customer the e-mail that `event` warrants, if any.

    Raise on transport errors (SMTP, network) so that the caller retries.
    """
    email = EMAILS.get(event.type)
    if email is None or not event.stream_id.startswith(ORDER_STREAM_PREFIX):
        return
    placed = _order_placed(event)
    if placed is None:
        logger.warning(
            "No order.placed in %s: no e-mail for %s v%s",
            event.stream_id,
            event.type,
            event.version,
        )
        return
    recipient = _customer_email(placed["customer_id"])
    if not recipient:
        logger.info(
            "Customer %s has no e-mail address: no e-mail for %s v%s",
            placed["customer_id"],
            event.stream_id,
            event.version,
        )
        return
    message = build_message(event, email, placed=placed, recipient=recipient)
    message.send(fail_silently=False)
    logger.info(
        "Sent the %s e-mail for %s v%s",
        email.template,
        event.stream_id,
        event.version,
    )


def build_message(
    event: RecordedEvent, email: Email, *, placed: dict[str, Any], recipient: str
) -> EmailMultiAlternatives:
    """Render the e-mail of `event` for `recipient` (not sent)."""
    context = _context(event, placed)
    subject = email.subject.format(order_ref=context["order_ref"])
    base = f"emails/{email.template}"
    text = render_to_string(f"{base}.txt", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient],
        headers={
            "Message-ID": message_id(event),
            "X-Order-Event": f"{event.stream_id}/{event.version}",
            # RFC 3834: an automatic message; auto-responders should not answer.
            "Auto-Submitted": "auto-generated",
        },
    )
    # The HTML part is optional: an e-mail without that template is text only.
    with contextlib.suppress(TemplateDoesNotExist):
        message.attach_alternative(
            render_to_string(f"{base}.html", context), "text/html"
        )
    return message


def message_id(event: RecordedEvent) -> str:
    """Return the Message-ID of the e-mail for `event`: the same on every delivery."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(" >") or "localhost"
    return f"<{event.stream_id}.v{event.version}@{domain}>"


def format_cents(cents: int) -> str:
    """Format an amount of cents for an e-mail: `EUR 12.50`."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{CURRENCY} {whole:,}.{part:02d}"


def _order_placed(event: RecordedEvent) -> dict[str, Any] | None:
    """Return the order's placed data with its lines and address as of `event`.

    An order's lines (until paid) and address (until shipped) may have changed
    since it was placed (`update-order`): an e-mail shows them as they were
    when its event happened.
    """
    if event.type == OrderPlaced.type_name:
        return event.data
    history = eventstore.load_streams([event.stream_id])[event.stream_id]
    if not history or not isinstance(history[0], OrderPlaced):
        return None
    order = event_to_data(history[0])
    for later in history[1 : event.version]:
        if isinstance(later, OrderLinesChanged):
            order["lines"] = event_to_data(later)["lines"]
            order["total_cents"] = later.total_cents
        elif isinstance(later, ShippingAddressChanged):
            order["shipping_address"] = event_to_data(later)["shipping_address"]
    return order


def _customer_email(customer_id: int) -> str:
    """Return the customer's e-mail address, or "" (no such user, no address).

    One prepared statement: building the ORM's query for it cost the effects
    relay more CPU than the rest of a placed order's e-mail effect.
    """
    sql = _email_sql()
    row = None if sql is None else fetch_one("default", sql, [customer_id])
    return "" if row is None else str(row[0] or "")


@functools.cache
def _email_sql() -> str | None:
    """Return the SELECT of a user's e-mail, or None for a user model without one."""
    model = get_user_model()
    try:
        field = model._meta.get_field(model.get_email_field_name())
    except FieldDoesNotExist:
        return None
    if not isinstance(field, Field):
        return None
    table, pk = model._meta.db_table, model._meta.pk
    assert pk is not None
    return (
        f'SELECT "{field.column}" FROM "{table}" '  # noqa: S608 (names from the model)
        f'WHERE "{pk.column}" = %s'
    )


def _context(event: RecordedEvent, placed: dict[str, Any]) -> dict[str, Any]:
    order_id = str(placed["order_id"])
    data = event.data
    lines = [
        {
            "name": line["name"],
            "sku": line["sku"],
            "quantity": line["quantity"],
            "unit_price": format_cents(line["unit_price_cents"]),
            "total": format_cents(line["quantity"] * line["unit_price_cents"]),
        }
        for line in placed["lines"]
    ]
    amount = data.get("amount_cents")
    refund = data.get("refund_cents")
    return {
        "order_id": order_id,
        "order_ref": order_id.split("-", 1)[0].upper(),
        "customer_name": placed["shipping_address"]["name"],
        "lines": lines,
        "total": format_cents(placed["total_cents"]),
        "amount": format_cents(amount) if isinstance(amount, int) else "",
        "refund": format_cents(refund) if isinstance(refund, int) and refund else "",
        "tracking_number": data.get("tracking_number") or "",
        "reason": data.get("reason") or "",
        "occurred_at": event.recorded_at,
        "site_url": settings.SITE_URL,
    }
