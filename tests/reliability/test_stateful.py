"""A Hypothesis state machine over the write side, the worker and the projections.

In-process against the real PostgreSQL test databases, without Celery: a rule
submits a command (as the API would, through `acceptance.submit`), another runs
one worker step (`execution.execute`), another "kills" a worker (claims a
command and abandons it with its lease run out), and a stale attempt wakes up
late and must be fenced off. Payments are a process: a pay-order command stays
running after its request, until a rule delivers the effects (charges and
refunds through the simulated gateway, which stands in for the real one).
Projections catch up one at a time, and rebuilds must equal the live rows. A
plain-Python model predicts each command's outcome and the stock; after every
step the store is checked against the model and the invariants of DESIGN.md,
the money invariant among them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

import pytest
from django.conf import settings as django_settings
from django.db import connections
from django.db.models import QuerySet
from django.utils import timezone
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_config
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from commands_app import acceptance, effects, execution, sweeper
from commands_app.models import CommandRecord, CommandStatus, Effect
from commands_app.payments import get_gateway
from commands_app.registry import COMMANDS
from projections import rebuild
from projections.models import Checkpoint
from projections.registry import PROJECTOR_NAMES
from projections.runner import catch_up
from tests.conftest import make_user
from tests.projections.conftest import rows, settle
from tests.reliability.reconcile import (
    COMMANDS_SQL,
    EVENTS_SQL,
    LEDGER_SQL,
    check_money,
    check_store,
)
from tests.support.commands import ADDRESS, DECLINED_CARD, GOOD_CARD
from tests.support.projections import projections_held_here

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

WRITE_TABLES = ("events", "commands", "product_skus", "effects", "gateway_ledger")
READ_TABLES = (
    "read_products",
    "read_orders",
    "read_customer_orders",
    "read_sales_orders",
    "read_daily_sales",
    "read_dead_letters",
    "read_projected_mark",
    "read_checkpoints",
)
PRODUCTS, ORDERS, SKUS = 3, 4, ("SKU-A", "SKU-B", "SKU-C")
# Rules pick among what exists by index: the draw never depends on the database.
INDEX = st.integers(0, 63)
T = TypeVar("T")


def pick(items: list[T], index: int) -> T:
    return items[index % len(items)]


@dataclass
class Submitted:
    """What a client sent: enough to send it again."""

    name: str
    user: Any
    body: dict[str, Any]
    payload: dict[str, Any]
    key: str | None
    command_id: str


@dataclass
class Model:
    """The expected state, advanced when a command is executed."""

    skus: set[str] = field(default_factory=set)
    available: dict[UUID, int] = field(default_factory=dict)
    reserved: dict[UUID, dict[UUID, int]] = field(default_factory=dict)
    orders: dict[UUID, dict[str, Any]] = field(default_factory=dict)

    def decide(self, name: str, payload: dict[str, Any], user: Any) -> str | None:
        """Return the refusal code for a command, or None (and apply it)."""
        decide = getattr(self, name.replace("-", "_"))
        code: str | None = decide(payload, user)
        return code

    def register_product(self, payload: dict[str, Any], user: Any) -> str | None:
        product_id = UUID(payload["product_id"])
        if product_id in self.available:
            return "duplicate_id"
        if payload["sku"] in self.skus:
            return "duplicate_sku"
        self.skus.add(payload["sku"])
        self.available[product_id] = payload["initial_stock"]
        self.reserved[product_id] = {}
        return None

    def restock_product(self, payload: dict[str, Any], user: Any) -> str | None:
        product_id = UUID(payload["product_id"])
        if product_id not in self.available:
            return "product_not_found"
        self.available[product_id] += payload["quantity"]
        return None

    def place_order(self, payload: dict[str, Any], user: Any) -> str | None:
        order_id = UUID(payload["order_id"])
        if order_id in self.orders:
            return "duplicate_id"
        wanted: dict[UUID, int] = {}
        for line in payload["lines"]:
            pid = UUID(line["product_id"])
            wanted[pid] = wanted.get(pid, 0) + line["quantity"]
        for pid, quantity in wanted.items():
            if pid not in self.available:
                return "product_not_found"
            if quantity > self.available[pid]:
                return "insufficient_stock"
        for pid, quantity in wanted.items():
            self.available[pid] -= quantity
            self.reserved[pid][order_id] = quantity
        self.orders[order_id] = {"customer": user.pk, "status": "placed"}
        self.orders[order_id]["lines"] = wanted
        return None

    def pay_order(self, payload: dict[str, Any], user: Any) -> str | None:
        order = self.orders.get(UUID(payload["order_id"]))
        if order is None or order["customer"] != user.pk:
            return "order_not_found"
        if order["status"] == "payment_pending":
            return "payment_in_progress"
        if order["status"] != "placed":
            return "invalid_state"
        order["status"] = "payment_pending"
        order["declined"] = payload["card"]["token"].startswith("tok_declined_")
        return None

    def charged(self, order_id: UUID) -> str | None:
        """The charge of the order's pending payment ran: its command's outcome."""
        order = self.orders[order_id]
        assert order["status"] == "payment_pending"
        if order["declined"]:
            order["status"] = "placed"
            return "payment_declined"
        order["status"] = "paid"
        return None

    def cancel_order(self, payload: dict[str, Any], user: Any) -> str | None:
        order_id = UUID(payload["order_id"])
        order = self.orders.get(order_id)
        if order is None or (not user.is_staff and order["customer"] != user.pk):
            return "order_not_found"
        if order["status"] == "payment_pending":
            return "payment_in_progress"
        if order["status"] not in ("placed", "paid"):
            return "invalid_state"
        order["status"] = "cancelled"
        for pid in order["lines"]:
            self.available[pid] += self.reserved[pid].pop(order_id, 0)
        return None

    def ship_order(self, payload: dict[str, Any], user: Any) -> str | None:
        order = self.orders.get(UUID(payload["order_id"]))
        if order is None:
            return "order_not_found"
        if order["status"] != "paid":
            return "invalid_state"
        order["status"] = "shipped"
        return None


def truncate() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(WRITE_TABLES)}")
    with connections["read"].cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(READ_TABLES)}")


def load(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def money_effects() -> QuerySet[Effect]:
    return Effect.objects.filter(kind__in=("charge", "refund"))


def ledger_rows() -> list[tuple[Any, ...]]:
    with connections["default"].cursor() as cursor:
        cursor.execute(LEDGER_SQL)
        return list(cursor.fetchall())


def store_rows() -> tuple[dict[str, tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Return commands (id → type, status, position, payload) and events, as
    reconcile() reads them."""
    with connections["default"].cursor() as cursor:
        cursor.execute(COMMANDS_SQL)
        commands = {str(row[0]): row[1:] for row in cursor.fetchall()}
        cursor.execute(EVENTS_SQL)
        events = [(*row[:5], load(row[5]), load(row[6])) for row in cursor.fetchall()]
    return commands, events


STOCK_MOVES = {
    "product.registered.v1": lambda d: d["initial_stock"],
    "product.restocked.v1": lambda d: d["quantity"],
    "product.stock_reserved.v1": lambda d: -d["quantity"],
    "product.stock_released.v1": lambda d: d["quantity"],
}


def fold_stock(events: list[tuple[Any, ...]]) -> dict[UUID, int]:
    stock: dict[UUID, int] = defaultdict(int)
    for event in events:
        move = STOCK_MOVES.get(event[4])
        if move is not None:
            stock[UUID(event[5]["product_id"])] += move(event[5])
    return dict(stock)


class OrdersMachine(RuleBasedStateMachine):
    """Submit, duplicate, execute, kill, fence, catch up and rebuild."""

    staff: Any = None
    customers: tuple[Any, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        truncate()
        self.model = Model()
        self.product_ids = [uuid4() for _ in range(PRODUCTS)]
        self.order_ids = [uuid4() for _ in range(ORDERS)]
        self.submitted: list[Submitted] = []
        self.expected: dict[str, str | None] = {}  # command id → refusal code
        self.attempts: dict[str, int] = defaultdict(int)
        self.zombies: list[tuple[str, int]] = []
        self.done: set[str] = set()
        # pay-order commands waiting for their charge: command id → order id.
        self.paying: dict[str, UUID] = {}
        self.keys = 0

    @initialize(stocks=st.lists(st.integers(1, 4), min_size=2, max_size=2))
    def catalogue(self, stocks: list[int]) -> None:
        """Start with two products registered, so that orders have something."""
        for product, stock in enumerate(stocks):
            self.register(product, SKUS[product], stock, keyed=False)
            self.run_command(self.submitted[-1].command_id)
        # And one placed order, so that payments have something to pay.
        self.place(0, 0, [(0, 1)], keyed=False)
        self.run_command(self.submitted[-1].command_id)

    # --- Submitting, as the API does after its checks -----------------------------

    def submit(self, name: str, user: Any, body: dict[str, Any], keyed: bool) -> None:
        payload = dict(body)
        if "card" in body:
            card = body["card"]
            token = get_gateway().tokenize(
                number=card["number"],
                exp_month=card["exp_month"],
                exp_year=card["exp_year"],
            )
            payload["card"] = {
                "token": token.token,
                "last4": token.last4,
                "exp_month": card["exp_month"],
                "exp_year": card["exp_year"],
            }
        spec = COMMANDS[name]
        field_name = spec.aggregate_field()
        self.keys += 1
        key = f"key-{self.keys}" if keyed else None
        before = CommandRecord.objects.count()
        record, created = acceptance.submit(
            spec,
            user_id=user.pk,
            payload=payload,
            aggregate_id=UUID(payload[field_name]) if field_name else None,
            idempotency_key=key,
            body_hash=acceptance.request_hash(name, body),
        )
        assert created
        assert record.status == CommandStatus.ACCEPTED
        assert CommandRecord.objects.count() == before + 1
        self.submitted.append(Submitted(name, user, body, payload, key, str(record.id)))

    def owner(self, order_id: UUID) -> int | None:
        return acceptance.order_owner(order_id)

    @rule(
        product=st.integers(0, PRODUCTS - 1),
        sku=st.sampled_from(SKUS),
        stock=st.integers(0, 4),
        keyed=st.booleans(),
    )
    def register(self, product: int, sku: str, stock: int, keyed: bool) -> None:
        body = {
            "product_id": str(self.product_ids[product]),
            "sku": sku,
            "name": f"Product {sku}",
            "price_cents": 100 * (product + 1),
            "initial_stock": stock,
        }
        self.submit("register-product", self.staff, body, keyed)

    @rule(
        product=st.integers(0, PRODUCTS - 1),
        quantity=st.integers(1, 3),
        keyed=st.booleans(),
    )
    def restock(self, product: int, quantity: int, keyed: bool) -> None:
        body = {"product_id": str(self.product_ids[product]), "quantity": quantity}
        self.submit("restock-product", self.staff, body, keyed)

    @rule(
        order=st.integers(0, ORDERS - 1),
        customer=st.integers(0, 1),
        lines=st.lists(
            st.tuples(st.integers(0, PRODUCTS - 1), st.integers(1, 3)),
            min_size=1,
            max_size=3,
        ),
        keyed=st.booleans(),
    )
    def place(
        self, order: int, customer: int, lines: list[tuple[int, int]], keyed: bool
    ) -> None:
        body = {
            "order_id": str(self.order_ids[order]),
            "lines": [
                {"product_id": str(self.product_ids[p]), "quantity": q}
                for p, q in lines
            ],
            "shipping_address": ADDRESS,
        }
        self.submit("place-order", self.customers[customer], body, keyed)

    @rule(
        order=st.integers(0, ORDERS - 1),
        declined=st.booleans(),
        keyed=st.booleans(),
    )
    def pay(self, order: int, declined: bool, keyed: bool) -> None:
        owner = self.owner(self.order_ids[order])
        customer = next((c for c in self.customers if c.pk == owner), None)
        if customer is None:  # the API answers 404 (or 403) and stores nothing
            return
        card = DECLINED_CARD if declined else GOOD_CARD
        body = {"order_id": str(self.order_ids[order]), "card": card}
        self.submit("pay-order", customer, body, keyed)

    @rule(
        order=st.integers(0, ORDERS - 1),
        declined=st.booleans(),
        deliver=st.booleans(),
    )
    def pay_now(self, order: int, declined: bool, deliver: bool) -> None:
        """A payment run by a worker at once, its charge maybe delivered too."""
        before = len(self.submitted)
        self.pay(order, declined, keyed=False)
        if len(self.submitted) > before:
            self.run_command(self.submitted[-1].command_id)
        if deliver:
            self.deliver_effects()

    @rule(order=st.integers(0, ORDERS - 1), by_staff=st.booleans())
    def cancel_now(self, order: int, by_staff: bool) -> None:
        """A cancellation run by a worker at once (a paid order owes a refund)."""
        before = len(self.submitted)
        self.cancel(order, by_staff, keyed=False)
        if len(self.submitted) > before:
            self.run_command(self.submitted[-1].command_id)

    @rule(order=st.integers(0, ORDERS - 1), by_staff=st.booleans(), keyed=st.booleans())
    def cancel(self, order: int, by_staff: bool, keyed: bool) -> None:
        owner = self.owner(self.order_ids[order])
        if owner is None:
            return
        user = (
            self.staff if by_staff else next(c for c in self.customers if c.pk == owner)
        )
        body = {"order_id": str(self.order_ids[order]), "reason": "changed mind"}
        self.submit("cancel-order", user, body, keyed)

    @rule(order=st.integers(0, ORDERS - 1), keyed=st.booleans())
    def ship(self, order: int, keyed: bool) -> None:
        if self.owner(self.order_ids[order]) is None:
            return
        body = {"order_id": str(self.order_ids[order]), "tracking_number": "TRK-1"}
        self.submit("ship-order", self.staff, body, keyed)

    @precondition(lambda self: any(s.key for s in self.submitted))
    @rule(index=INDEX, other_body=st.booleans())
    def duplicate(self, index: int, other_body: bool) -> None:
        first = pick([s for s in self.submitted if s.key], index)
        spec = COMMANDS[first.name]
        field_name = spec.aggregate_field()
        body = {**first.body, "extra": 1} if other_body else first.body
        before = CommandRecord.objects.count()
        arguments = {
            "user_id": first.user.pk,
            "payload": first.payload,
            "aggregate_id": UUID(first.payload[field_name]) if field_name else None,
            "idempotency_key": first.key,
            "body_hash": acceptance.request_hash(first.name, body),
        }
        if other_body:
            with pytest.raises(acceptance.IdempotencyMismatchError):
                acceptance.submit(spec, **arguments)
        else:
            record, created = acceptance.submit(spec, **arguments)
            assert not created
            assert str(record.id) == first.command_id
        assert CommandRecord.objects.count() == before

    # --- Workers --------------------------------------------------------------------

    def claimable(self) -> list[str]:
        """Commands a worker may claim: not final, no live lease (kept in Python,
        so that what Hypothesis draws never depends on timing)."""
        return [s.command_id for s in self.submitted if s.command_id not in self.done]

    def expect_outcome(self, command_id: str) -> None:
        """Predict a command that just reached a final status; check it."""
        record = CommandRecord.objects.get(pk=command_id)
        assert record.is_final, record
        sent = next(s for s in self.submitted if s.command_id == command_id)
        if record.attempt > django_settings.COMMAND_MAX_ATTEMPTS:
            code: str | None = "worker_lost"
        else:
            code = self.model.decide(sent.name, sent.payload, sent.user)
        self.expected[command_id] = code
        self.done.add(command_id)
        error = record.error or {}
        if code is None:
            assert record.status == CommandStatus.SUCCEEDED, (record, record.error)
            assert record.error is None
        elif code == "worker_lost":
            assert record.status == CommandStatus.FAILED, record
            assert error["code"] == "worker_lost"
        else:
            assert record.status == CommandStatus.REJECTED, (record, code)
            assert error["code"] == code, (error, code)
        assert record.lease_expires_at is None

    def run_command(self, command_id: str) -> None:
        execution.execute(UUID(command_id))
        self.attempts[command_id] += 1
        self.expect_ran(command_id)

    def expect_ran(self, command_id: str) -> None:
        """Check a command just run: final, or a pay-order waiting for its payment."""
        record = CommandRecord.objects.get(pk=command_id)
        assert record.attempt == self.attempts[command_id]
        if record.type == "pay-order" and not record.is_final:
            self.expect_payment_requested(record)
            return
        self.expect_outcome(command_id)

    def expect_payment_requested(self, record: CommandRecord) -> None:
        """A pay-order that requested its payment waits, unclaimable, for it."""
        sent = next(s for s in self.submitted if s.command_id == str(record.id))
        assert record.attempt <= django_settings.COMMAND_MAX_ATTEMPTS
        assert self.model.decide(sent.name, sent.payload, sent.user) is None
        assert record.status == CommandStatus.RUNNING
        assert record.lease_expires_at is None
        assert execution.claim(record.id) is None
        assert str(record.id) not in {str(r.pk) for r in sweeper.stuck_commands()}
        self.paying[str(record.id)] = UUID(sent.payload["order_id"])
        self.done.add(str(record.id))

    @rule()
    def deliver_effects(self) -> None:
        """The relay drains: charges and refunds run, outcomes are appended."""
        effects.drain_once()
        assert not money_effects().exclude(status="done").exists()
        for command_id, order_id in list(self.paying.items()):
            del self.paying[command_id]
            code = self.model.charged(order_id)
            self.expected[command_id] = code
            record = CommandRecord.objects.get(pk=command_id)
            if code is None:
                assert record.status == CommandStatus.SUCCEEDED, record.error
            else:
                assert record.status == CommandStatus.REJECTED, record
                assert (record.error or {}).get("code") == code
            assert "token" not in record.payload["card"]

    @precondition(lambda self: bool(self.claimable()))
    @rule(index=INDEX)
    def worker_step(self, index: int) -> None:
        self.run_command(pick(self.claimable(), index))

    @rule()
    def worker_drains_the_queue(self) -> None:
        for command_id in self.claimable():
            self.run_command(command_id)

    @precondition(lambda self: bool(self.claimable()))
    @rule(index=INDEX)
    def kill(self, index: int) -> None:
        """A worker claims a command and dies: its lease runs out."""
        command_id = pick(self.claimable(), index)
        attempt = execution.claim(UUID(command_id))
        assert attempt == self.attempts[command_id] + 1
        self.attempts[command_id] = attempt
        assert execution.claim(UUID(command_id)) is None  # held while leased
        CommandRecord.objects.filter(pk=command_id).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
        stuck = {str(r.pk) for r in sweeper.stuck_commands()}
        assert command_id in stuck, "the sweeper must re-drive a lapsed lease"
        self.zombies.append((command_id, attempt))

    @precondition(lambda self: bool(self.zombies))
    @rule(index=INDEX)
    def zombie_wakes_up(self, index: int) -> None:
        """An abandoned attempt resumes late: fenced off unless still the holder."""
        command_id, attempt = pick(self.zombies, index)
        self.zombies.remove((command_id, attempt))
        record = CommandRecord.objects.select_related("user").get(pk=command_id)
        holds = record.status == CommandStatus.RUNNING and record.attempt == attempt
        if holds:
            execution._run(record, attempt)  # as the woken worker would go on
            self.expect_ran(command_id)
            return
        before = store_rows()
        with pytest.raises(execution.LostClaimError):
            execution._decide_and_commit(record, attempt)
        with pytest.raises(execution.LostClaimError):
            execution.finish(record, attempt, status=CommandStatus.FAILED)
        assert store_rows() == before

    # --- Projections ----------------------------------------------------------------

    @rule(name=st.sampled_from(PROJECTOR_NAMES), batch=st.integers(1, 5))
    def restart_projector(self, name: str, batch: int) -> None:
        """A projector (re)starts and catches up on its own, in small batches."""
        result = catch_up(name, batch_size=batch)
        assert not result.errors, result.errors

    @rule()
    def full_catch_up(self) -> None:
        result = settle(timeout=30)
        assert not result.errors, result.errors
        _, events = store_rows()
        with connections["read"].cursor() as cursor:
            cursor.execute("SELECT id, available FROM read_products")
            read = dict(cursor.fetchall())
        assert read == fold_stock(events) == self.model.available

    @rule(name=st.sampled_from(PROJECTOR_NAMES), swap=st.booleans())
    def rebuild_projection(self, name: str, swap: bool) -> None:
        if swap:
            live = rows(name)
            rebuild.rebuild(name, batch_size=3)
            assert rows(name) == live
        else:
            verification = rebuild.verify(name, batch_size=3)
            assert verification.equal, verification

    # --- Invariants -----------------------------------------------------------------

    @invariant()
    def store_is_consistent(self) -> None:
        commands, events = store_rows()
        problems: list[str] = []
        check_store(commands, events, set(), problems)
        drained = not money_effects().exclude(status="done").exists()
        check_money(events, ledger_rows(), problems, drained=drained)
        assert not problems, problems
        # One command per submission: duplicates never made a second.
        assert set(commands) == {s.command_id for s in self.submitted}
        # Each final command as predicted; the stock as the model folds it.
        for command_id, code in self.expected.items():
            status = commands[command_id][1]
            assert (status == CommandStatus.SUCCEEDED) == (code is None), (
                command_id,
                status,
                code,
            )
        stock = fold_stock(events)
        assert stock == self.model.available
        assert all(available >= 0 for available in stock.values())

    @invariant()
    def read_model_matches_what_it_applied(self) -> None:
        """The catalogue equals the stock folded from the events it has applied."""
        checkpoint = Checkpoint.objects.filter(name="product_catalogue").first()
        reached = (checkpoint.tx_id, checkpoint.position) if checkpoint else (0, 0)
        _, events = store_rows()
        applied = [e for e in events if (e[1], e[0]) <= reached]
        with connections["read"].cursor() as cursor:
            cursor.execute("SELECT id, available FROM read_products")
            read = dict(cursor.fetchall())
        assert read == fold_stock(applied)


def test_the_write_side_and_projections_keep_their_invariants(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.PAYMENT_GATEWAY_LATENCY_MS = 0
    # No broker: the state machine is the worker (no relay publishes either).
    settings.COMMANDS_RELAY_ENABLED = False
    monkeypatch.setattr(acceptance, "enqueue", lambda record: None)
    # The machine is also the only projection runner: a worker still draining
    # for an earlier test (or woken by this test's appends) is kept off the
    # projections (projections_held_here, below).
    OrdersMachine.staff = make_user("sm-staff", staff=True)
    OrdersMachine.customers = (make_user("sm-alice"), make_user("sm-bob"))
    # Effects too: a shared worker's relay pauses while this process holds the
    # drain lock (its own drains take it again, in the same session).
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [effects.DRAIN_LOCK])
    try:
        with projections_held_here():
            run_state_machine_as_test(OrdersMachine, settings=hypothesis_settings)
    finally:
        truncate()
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [effects.DRAIN_LOCK])


# About 50 to 90 s on the 2-core machine (payments included). No shrinking:
# each step costs database round trips, and shrinking a failure took minutes;
# the failing steps print unshrunk.
hypothesis_settings = hypothesis_config(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)
