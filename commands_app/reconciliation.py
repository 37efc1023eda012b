"""The money invariant: the payment gateway's records against the events.

Per order, what the gateway captured minus what it refunded equals what the
events say (`order.payment_captured.v1` minus `order.refunded.v1`); never two
captures for one order, in either; and, once the effects have drained, never a
capture without its PaymentCaptured. The simulated gateway's ledger is the
table `gateway_ledger`; `manage.py reconcile_payments` runs the check.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from django.db import connections

LEDGER_SQL = (
    "SELECT order_id, kind, outcome, amount_cents, idempotency_key, reference "
    "FROM gateway_ledger ORDER BY id"
)
MONEY_EVENTS_SQL = (
    "SELECT position, tx_id::text::bigint, stream_id, version, type, data, metadata "
    "FROM events WHERE type IN ('order.payment_captured.v1', 'order.refunded.v1') "
    "ORDER BY position"
)


def check_money(
    events: list[tuple[Any, ...]],
    ledger: list[tuple[Any, ...]],
    problems: list[str],
    *,
    drained: bool = True,
) -> None:
    """The gateway's ledger against the events, per order.

    Never two captures for one order, in the ledger or in the events; once the
    effects have drained (`drained`), captured minus refunded is the same on
    both sides and every captured charge has its PaymentCaptured. Stored
    `order.paid.v1` events predate the ledger and are left out.
    """
    told: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    captured_ids: set[str] = set()
    for event in events:
        kind, data = event[4], event[5]
        if kind == "order.payment_captured.v1":
            told[data["order_id"]][0] += data["amount_cents"]
            told[data["order_id"]][2] += 1
            captured_ids.add(str(data["payment_id"]))
        elif kind == "order.refunded.v1":
            told[data["order_id"]][1] += data["amount_cents"]
    done: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for order_id, kind, outcome, amount, key, _reference in ledger:
        if outcome != "succeeded":
            continue
        order = str(order_id)
        if kind == "charge":
            done[order][0] += amount
            done[order][2] += 1
            if drained and key not in captured_ids:
                problems.append(f"charge {key} of order {order} has no PaymentCaptured")
        else:
            done[order][1] += amount
    for order in sorted(set(told) | set(done)):
        if told[order][2] > 1:
            problems.append(f"order {order} captured {told[order][2]} times (events)")
        if done[order][2] > 1:
            problems.append(f"order {order} charged {done[order][2]} times (gateway)")
        if done[order][1] > done[order][0]:
            problems.append(f"order {order} refunded more than it was charged")
        net_done, net_told = (
            done[order][0] - done[order][1],
            told[order][0] - told[order][1],
        )
        if drained and net_done != net_told:
            problems.append(
                f"order {order}: the gateway kept {net_done}, the events say {net_told}"
            )


def open_money_effects(*, using: str = "default") -> int:
    """Count charges and refunds not done yet (pending or parked)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM effects WHERE status <> 'done' "
            "AND kind IN ('charge', 'refund')"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def money_problems(*, drained: bool, using: str = "default") -> list[str]:
    """Check the money invariant on this database; return the problems found.

    With `drained` False (effects still open), only what holds at any moment
    is checked: never two captures, never more refunded than charged.
    """
    with connections[using].cursor() as cursor:
        cursor.execute(MONEY_EVENTS_SQL)
        events = [(*r[:5], _json(r[5]), _json(r[6])) for r in cursor.fetchall()]
        cursor.execute(LEDGER_SQL)
        ledger = list(cursor.fetchall())
    problems: list[str] = []
    check_money(events, ledger, problems, drained=drained)
    return problems


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
