"""Forgetting a customer on the write side: their key, bodies, events and user.

`erase_write_side` runs in the transaction that appends `customer.forgotten.v1`
(the forget-customer handler's `in_transaction`), so that the erasure and the
event commit together or not at all. The read side erases on that event
(projections/erasure.py); effects still pending read the events at delivery,
where the personal fields are already erased, and find no e-mail address.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.contrib.auth import get_user_model
from django.db import connections

from . import pii
from .models import CommandRecord

logger = logging.getLogger(__name__)

# Fields of command bodies that hold personal data (place-order's address,
# cancel-order's free text; update-order's address).
PERSONAL_PAYLOAD_FIELDS = ("shipping_address", "reason")
ERASED_HASH = "erased"


def is_customer(customer_id: int) -> bool:
    """Return True if the id is a user who is not staff (a customer)."""
    return (
        get_user_model()
        .objects.filter(pk=customer_id, is_staff=False, is_superuser=False)
        .exists()
    )


def erase_write_side(customer_id: int) -> dict[str, int]:
    """Erase a customer's personal data from the write database; return counts."""
    pii.shred(customer_id)
    streams = pii.customer_streams(customer_id)
    order_ids = [
        UUID(stream.removeprefix("order-"))
        for stream in streams
        if stream.startswith("order-")
    ]
    counts = {
        "events_rewritten": pii.erase_clear_events(streams),
        "commands": erase_commands(customer_id, order_ids),
        "users": anonymise_user(customer_id),
    }
    # Counts and ids only: never a value that was erased.
    logger.info("forgot customer %s: %s", customer_id, counts)
    return counts


def erase_commands(customer_id: int, order_ids: list[UUID]) -> int:
    """Erase personal fields in the bodies of the customer's commands.

    Also the commands others sent about the customer's orders (staff cancel
    one with a reason). The idempotency hash of a body is dropped with it: a
    retry with the old key is then a mismatch (422), never a second command.
    """
    records = CommandRecord.objects.filter(user_id=customer_id)
    if order_ids:
        records = records | CommandRecord.objects.filter(aggregate_id__in=order_ids)
    changed = 0
    for record in records.only("id", "payload", "request_hash"):
        payload = erase_payload(record.payload)
        if payload == record.payload and record.request_hash == ERASED_HASH:
            continue
        CommandRecord.objects.filter(pk=record.pk).update(
            payload=payload, request_hash=ERASED_HASH
        )
        changed += 1
    return changed


def erase_payload(payload: Any) -> Any:
    if not isinstance(payload, dict):
        return payload
    return {
        name: pii.erase_value(value) if name in PERSONAL_PAYLOAD_FIELDS else value
        for name, value in payload.items()
    }


def anonymise_user(customer_id: int) -> int:
    """Anonymise the user record, sign them out everywhere; return 1 if found."""
    user_model = get_user_model()
    user = user_model.objects.filter(pk=customer_id).first()
    if user is None:
        return 0
    old_username = user.get_username()
    user.username = f"forgotten-{customer_id}"
    user.email = ""
    user.first_name = ""
    user.last_name = ""
    user.is_active = False
    user.set_unusable_password()
    user.save()
    with connections["default"].cursor() as cursor:
        # API tokens (knox) and sign-in records (axes) name the user.
        cursor.execute("DELETE FROM knox_authtoken WHERE user_id = %s", [customer_id])
        for table in ("axes_accessattempt", "axes_accessfailurelog", "axes_accesslog"):
            cursor.execute(
                f"DELETE FROM {table} WHERE username = %s",  # noqa: S608 -- constant
                [old_username],
            )
    return 1
