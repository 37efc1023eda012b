"""Past states: an order or a product as it was at a version or at a time.

The read models hold the present only. A past state is folded from the
stream's events, read as the projections read them (upcast, and through the
event store's decoding, so an erased personal field reads as erased here too):

- an order through the order summary projector's own handlers, so that its
  past state has the read model's row shape (`read_orders`: lines, address,
  timeline) by construction, not by a second description of it;
- a product through its aggregate, which the write side loads from the
  nearest kept snapshot at or below the version, then the events after it
  (`commands_app.snapshots.load_product_as_of`): a product's stream grows with
  every order placed.

Orders are not snapshotted: their streams are short, and a snapshot would copy
the shipping address out of the events that crypto-shredding erases.

A version is the stream's own (1 is its first event). As of a time, the state
is that after the last event recorded at or before it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

# The write side's published past-state loader of products (pyproject.toml,
# import contracts): it owns the product aggregate and its snapshots.
from commands_app import eventstore, snapshots
from commands_app.eventstore import RecordedEvent

from .base import Staged, decode
from .projectors.order_summary import OrderSummaryProjector

# The kinds of rows the order summary projector stages, folded here as its
# `write()` applies them. A new kind must be folded here too (a test checks).
# "forgotten" comes from a customer's stream (forget-customer), never from an
# order's: an order's own events already read erased once the key is shredded,
# so the fold has nothing to do for it.
ORDER_ROW_KINDS = frozenset({"placed", "moved", "forgotten"})
# The columns a "moved" row may set: (state key, row key).
MOVED_COLUMNS = (
    ("status", "status"),
    ("lines", "lines"),
    ("total_cents", "total_cents"),
    ("shipping_address", "address"),
)
# State keys that change with every event: not worth a line in "what changed".
UNTRACKED = frozenset({"history", "updated_at", "position"})
# W3C traceparent: version, trace id, parent span id, flags.
TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def order_stream(order_id: UUID) -> str:
    """Return an order's stream id, as the write side names it."""
    return f"order-{order_id}"


def product_stream(product_id: UUID) -> str:
    """Return a product's stream id, as the write side names it."""
    return f"product-{product_id}"


class UnknownRowKindError(RuntimeError):
    """The projector staged a kind of row that the past-state fold cannot fold."""


@dataclass(frozen=True)
class PastState:
    """A stream's state after `version`, recorded at `recorded_at`."""

    state: dict[str, Any]
    version: int
    recorded_at: datetime


@dataclass(frozen=True)
class Step:
    """One event of an order's timeline, the state after it and what changed."""

    event: RecordedEvent
    state: dict[str, Any] | None
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.event.metadata

    @property
    def command_id(self) -> str | None:
        """Return the command that appended the event (a payment's, for outcomes)."""
        found = self.metadata.get("command_id")
        return str(found) if found else None

    @property
    def user_id(self) -> int | None:
        found = self.metadata.get("user_id")
        return found if isinstance(found, int) else None

    @property
    def trace_id(self) -> str | None:
        """Return the trace id of the span that appended the event, if traced."""
        match = TRACEPARENT.match(str(self.metadata.get("traceparent") or ""))
        return match.group(1) if match else None


def target_version(
    stream_id: str, *, version: int | None, at: datetime | None
) -> int | None:
    """Return the version to fold to: `version`, as of `at`, or None for now.

    A version beyond the stream's head is returned as asked; the fold stops at
    the head and says so (`PastState.version`).
    """
    if at is not None:
        return eventstore.stream_head(stream_id, until=at)[1]
    if version is not None:
        return version
    return eventstore.stream_head(stream_id)[0]


# --- Orders ---------------------------------------------------------------------------


def order_as_of(
    order_id: UUID, *, version: int | None = None, at: datetime | None = None
) -> PastState | None:
    """Return the order as it was at `version` or at `at` (the head if beyond it).

    None when the order does not exist, or did not yet exist at `at`.
    """
    until = target_version(order_stream(order_id), version=version, at=at)
    if not until:
        return None
    events = eventstore.read_stream(order_stream(order_id), until_version=until)
    state = fold_order(events)
    if state is None:
        return None
    return PastState(state, events[-1].version, events[-1].recorded_at)


def fold_order(events: Sequence[RecordedEvent]) -> dict[str, Any] | None:
    """Return the `read_orders` row these events (from version 1) make, or None."""
    state: dict[str, Any] | None = None
    projector = OrderSummaryProjector()
    for recorded, event in decode(events):
        state = _order_step(projector, state, recorded, event)
    return state


def order_timeline(order_id: UUID) -> list[Step]:
    """Return every event of the order, with the state after it and what changed."""
    events = eventstore.read_stream(order_stream(order_id))
    projector = OrderSummaryProjector()
    decoded = {recorded.position: event for recorded, event in decode(events)}
    steps: list[Step] = []
    state: dict[str, Any] | None = None
    for recorded in events:
        before = state
        event = decoded.get(recorded.position)
        if event is not None:
            state = _order_step(projector, copy.deepcopy(state), recorded, event)
        steps.append(Step(recorded, state, changes(before, state)))
    return steps


def _order_step(
    projector: OrderSummaryProjector,
    state: dict[str, Any] | None,
    recorded: RecordedEvent,
    event: Any,
) -> dict[str, Any] | None:
    """Apply one event's staged rows to `state`, as the projector's SQL would."""
    projector.staged = Staged()
    handler = projector.handlers.get(type(event))
    if handler is None:
        return state
    getattr(projector, handler)(event, recorded)
    staged = projector.staged
    unknown = staged.kinds() - ORDER_ROW_KINDS
    if unknown:
        raise UnknownRowKindError(
            f"order_summary staged {sorted(unknown)} for {recorded.type}: "
            "fold them in projections/past.py"
        )
    for row in staged.inserts("placed"):
        if state is None:
            state = {
                "id": UUID(row["id"]),
                "customer_id": row["customer_id"],
                "status": "placed",
                "lines": row["lines"],
                "shipping_address": row["address"],
                "total_cents": row["total_cents"],
                "currency": row["currency"],
                "refunded_cents": 0,
                "created_at": recorded.recorded_at,
                "updated_at": recorded.recorded_at,
                "history": list(row["history"]),
                "position": row["position"],
            }
    for row in staged.updates("moved"):
        if state is not None and row["position"] > state["position"]:
            # None leaves a column as it is (the projector's SQL: coalesce).
            for column, key in MOVED_COLUMNS:
                if row[key] is not None:
                    state[column] = row[key]
            state["history"] = [*state["history"], row["entry"]]
            state["refunded_cents"] += row["refunded"]
            state["updated_at"] = recorded.recorded_at
            state["position"] = row["position"]
    return state


def changes(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> list[tuple[str, Any, Any]]:
    """Return (field, before, after) for each field an event changed."""
    if after is None or before is after:
        return []
    old = before or {}
    return [
        (key, old.get(key), value)
        for key, value in after.items()
        if key not in UNTRACKED and old.get(key) != value
    ]


# --- Products -------------------------------------------------------------------------


def product_as_of(
    product_id: UUID,
    *,
    version: int | None = None,
    at: datetime | None = None,
    use_snapshots: bool = True,
) -> PastState | None:
    """Return the product as it was at `version` or at `at` (the head if beyond it).

    Loaded by the write side from the nearest kept snapshot at or below the
    version (unless `use_snapshots` is False: the plain fold, which it equals).
    None when the product does not exist, or did not yet exist at `at`.
    """
    until = target_version(product_stream(product_id), version=version, at=at)
    if not until:
        return None
    loaded = snapshots.load_product_as_of(
        product_id, version=until, use_snapshots=use_snapshots
    )
    if loaded is None:
        return None
    state, last = loaded
    return PastState(state, last.version, last.recorded_at)
