"""Erase a forgotten customer's personal data from the read database.

Run by the order summary projector on `customer.forgotten.v1`, in the
transaction that moves its checkpoint. The result equals a rebuild's: events
read after the customer's key was destroyed give `[erased]` for every
non-empty string of a personal field (empty strings stay empty), and this
does the same to the rows projected before. Dead letters keep events as they
were read, so theirs are erased here too: a later replay re-inserts nothing
personal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections

from commands_app.domain.events import EVENT_TYPES

ERASED = "[erased]"

_ERASE_ORDERS_SQL = """
UPDATE {read_orders} AS o SET
    shipping_address = coalesce((
        SELECT jsonb_object_agg(a.key, CASE
            WHEN jsonb_typeof(a.value) = 'string' AND a.value <> '""'::jsonb
            THEN to_jsonb(%s::text) ELSE a.value END)
        FROM jsonb_each(o.shipping_address) AS a), '{{}}'::jsonb),
    history = coalesce((
        SELECT jsonb_agg(CASE
            WHEN jsonb_typeof(h.entry->'details'->'reason') = 'string'
                AND h.entry->'details'->>'reason' <> ''
            THEN jsonb_set(h.entry, '{{details,reason}}', to_jsonb(%s::text))
            ELSE h.entry END ORDER BY h.n)
        FROM jsonb_array_elements(o.history) WITH ORDINALITY AS h(entry, n)),
        '[]'::jsonb)
WHERE o.customer_id = ANY(%s)
"""


def erase_strings(value: Any) -> Any:
    """Return `value` with every non-empty string replaced by `[erased]`."""
    if isinstance(value, str):
        return ERASED if value else value
    if isinstance(value, dict):
        return {key: erase_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [erase_strings(item) for item in value]
    return value


def erase_customers(
    sql: Callable[[str, Sequence[Any]], int],
    customer_ids: Sequence[int],
    *,
    using: str,
) -> None:
    """Erase the customers' order rows (through `sql`) and dead letters."""
    if not customer_ids:
        return
    sql(_ERASE_ORDERS_SQL, [ERASED, ERASED, list(customer_ids)])
    erase_dead_letters(customer_ids, using=using)


def erase_dead_letters(customer_ids: Sequence[int], *, using: str) -> int:
    """Erase personal fields of the customers' parked or waiting events."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT id, event_type, data FROM read_dead_letters WHERE stream_id IN ("
            "SELECT stream_id FROM read_dead_letters "
            "WHERE (data->>'customer_id') = ANY(%s) "
            "UNION SELECT 'order-' || id::text FROM read_orders "
            "WHERE customer_id = ANY(%s))",
            [[str(c) for c in customer_ids], list(customer_ids)],
        )
        rows = cursor.fetchall()
        changed = 0
        for row_id, event_type, data in rows:
            data = json.loads(data) if isinstance(data, str) else data
            cls = EVENT_TYPES.get(event_type)
            fields = cls.personal_fields if cls is not None else ()
            erased = {
                name: erase_strings(value) if name in fields else value
                for name, value in data.items()
            }
            if erased != data:
                cursor.execute(
                    "UPDATE read_dead_letters SET data = %s::jsonb WHERE id = %s",
                    [json.dumps(erased), row_id],
                )
                changed += 1
    return changed
