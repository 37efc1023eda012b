"""The payment gateway: an interface, and a simulated slow gateway with a ledger.

The real gateway is outside the system; `SimulatedGateway` stands in for it in
development and tests. Card numbers are tokenised in the web process before the
command is stored, so only a token and the last four digits ever reach storage.

The interface is the one a Stripe-style provider implements: every charge and
refund carries an idempotency key, and a call retried with the same key returns
the first call's outcome, never a second charge. A call that times out has an
unknown outcome (the provider may or may not have charged): the caller retries
it with the same key. docs/operations.md says how to plug a real provider in.

The simulated gateway keeps its own ledger (`gateway_ledger`, one row per key),
standing in for the provider's records that the money invariant reconciles
against. It writes through a connection of its own, in autocommit, as a
provider's records do not roll back with the caller's transaction.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import psycopg
from django.conf import settings
from django.db import connections
from django.utils.module_loading import import_string

from .domain.errors import PaymentDeclinedError

# Card numbers that the simulated gateway declines, as test gateways do.
DECLINED_TEST_CARDS = frozenset({"4000000000000002", "4000000000009995"})
# The Redis key holding how many of the next gateway calls time out (tests).
TIMEOUTS_KEY = "simulated-gateway:timeouts"


class GatewayError(Exception):
    """Raise when the gateway could not be asked; retry with the same key."""


class GatewayTimeoutError(GatewayError):
    """Raise when a call timed out: its outcome is unknown, retry with the same key."""


@dataclass(frozen=True)
class CardToken:
    token: str
    last4: str


@dataclass(frozen=True)
class Charge:
    """A successful charge at the payment gateway."""

    reference: str
    amount_cents: int


@dataclass(frozen=True)
class Refund:
    """A successful refund at the payment gateway."""

    reference: str
    amount_cents: int


@dataclass(frozen=True)
class LedgerEntry:
    """The gateway's record of one call, as a lookup by key returns it."""

    idempotency_key: str
    kind: str
    outcome: str
    reference: str
    amount_cents: int
    order_id: UUID | None
    charge_reference: str
    decline_code: str


class PaymentGateway(Protocol):
    def tokenize(self, *, number: str, exp_month: int, exp_year: int) -> CardToken: ...

    def charge(
        self, *, token: str, amount_cents: int, idempotency_key: str, order_id: UUID
    ) -> Charge:
        """Charge a tokenised card; the same key never charges twice.

        Raise PaymentDeclinedError for a decline (the same key declines
        again), GatewayTimeoutError or GatewayError when the outcome is unknown.
        """
        ...

    def refund(
        self, *, charge_reference: str, amount_cents: int, idempotency_key: str
    ) -> Refund:
        """Refund (part of) a charge; the same key never refunds twice."""
        ...

    def lookup(self, idempotency_key: str) -> LedgerEntry | None:
        """Return what the gateway did for a key, or None if it never saw it."""
        ...


class SimulatedGateway:
    """A deterministic stand-in for a slow card gateway, with its own ledger.

    Latency is PAYMENT_GATEWAY_LATENCY_MS; a call slower than
    PAYMENT_GATEWAY_TIMEOUT_SECONDS times out. Faults for tests work across
    processes: a token made from a declined test card declines, and the Redis
    counter `TIMEOUTS_KEY` makes that many next calls time out after the
    gateway has recorded them (the worst case of an unknown outcome).
    """

    def tokenize(self, *, number: str, exp_month: int, exp_year: int) -> CardToken:
        # A random token, as a real gateway's vault hands out: unlike a hash of
        # the number, it reveals nothing about the card, whatever else leaks.
        outcome = "declined" if number in DECLINED_TEST_CARDS else "ok"
        return CardToken(
            token=f"tok_{outcome}_{secrets.token_hex(12)}", last4=number[-4:]
        )

    def charge(
        self, *, token: str, amount_cents: int, idempotency_key: str, order_id: UUID
    ) -> Charge:
        declined = token.startswith("tok_declined_")
        entry = self._call(
            idempotency_key,
            kind="charge",
            outcome="declined" if declined else "succeeded",
            amount_cents=amount_cents,
            order_id=order_id,
        )
        if entry.amount_cents != amount_cents:
            raise GatewayError("The idempotency key was used with another amount.")
        if entry.outcome == "declined":
            raise PaymentDeclinedError(
                "The card was declined.", decline_code=entry.decline_code
            )
        return Charge(reference=entry.reference, amount_cents=entry.amount_cents)

    def refund(
        self, *, charge_reference: str, amount_cents: int, idempotency_key: str
    ) -> Refund:
        charge = self._fetch(
            "SELECT order_id, amount_cents FROM gateway_ledger "
            "WHERE reference = %s AND kind = 'charge' AND outcome = 'succeeded'",
            [charge_reference],
        )
        if charge is None:
            raise GatewayError(f"No such charge: {charge_reference}.")
        entry = self._call(
            idempotency_key,
            kind="refund",
            outcome="succeeded",
            amount_cents=amount_cents,
            order_id=charge[0],
            charge_reference=charge_reference,
            limit=charge[1],
        )
        return Refund(reference=entry.reference, amount_cents=entry.amount_cents)

    def lookup(self, idempotency_key: str) -> LedgerEntry | None:
        row = self._fetch(_SELECT_SQL, [idempotency_key])
        return None if row is None else LedgerEntry(*row)

    # --- The simulation ---------------------------------------------------------

    _local = threading.local()

    def _call(self, key: str, **fields: Any) -> LedgerEntry:
        started = time.monotonic()
        timeout = settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS
        time.sleep(min(settings.PAYMENT_GATEWAY_LATENCY_MS / 1000, timeout))
        entry = self._record(key, **fields)
        pause = settings.PAYMENT_GATEWAY_PAUSE_AFTER_CALL_MS
        if pause:  # test-only: a window between the gateway's work and the caller's
            time.sleep(pause / 1000)
        if _take_timeout() or time.monotonic() - started > timeout:
            raise GatewayTimeoutError(f"The gateway did not answer within {timeout}s.")
        return entry

    def _record(
        self,
        key: str,
        *,
        kind: str,
        outcome: str,
        amount_cents: int,
        order_id: UUID,
        charge_reference: str = "",
        limit: int | None = None,
    ) -> LedgerEntry:
        prefix = "ch_" if kind == "charge" else "re_"
        reference = prefix + hashlib.sha256(key.encode()).hexdigest()[:24]
        decline_code = "card_declined" if outcome == "declined" else ""
        with self._connection().transaction() as tx:
            db = tx.connection
            if limit is not None:
                # Refunds of one charge never add up to more than it.
                db.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", [charge_reference]
                )
                row = db.execute(
                    "SELECT coalesce(sum(amount_cents), 0) FROM gateway_ledger "
                    "WHERE charge_reference = %s AND idempotency_key <> %s",
                    [charge_reference, key],
                ).fetchone()
                if row is not None and row[0] + amount_cents > limit:
                    raise GatewayError("The refunds would exceed the charge.")
            db.execute(
                "INSERT INTO gateway_ledger (idempotency_key, kind, outcome, "
                "reference, charge_reference, order_id, amount_cents, decline_code) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (idempotency_key) DO NOTHING",
                [
                    key,
                    kind,
                    outcome,
                    reference,
                    charge_reference,
                    order_id,
                    amount_cents,
                    decline_code,
                ],
            )
            row = db.execute(_SELECT_SQL, [key]).fetchone()
        assert row is not None
        return LedgerEntry(*row)

    def _fetch(self, sql: str, params: list[Any]) -> tuple[Any, ...] | None:
        with self._connection().transaction() as tx:
            return tx.connection.execute(sql, params).fetchone()

    @classmethod
    def close_connection(cls) -> None:
        """Close the calling thread's connection to the ledger, if it has one.

        Each thread's connection lasts as long as the thread: a process that
        must let go of the database first (a test run about to drop it)
        closes its own.
        """
        db: psycopg.Connection[Any] | None = getattr(cls._local, "db", None)
        if db is not None:
            db.close()
            cls._local.db = None

    def _connection(self) -> psycopg.Connection[Any]:
        """Return this thread's own autocommit connection to the write database."""
        db: psycopg.Connection[Any] | None = getattr(self._local, "db", None)
        if db is None or db.closed or db.broken:
            params = connections["default"].get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            db = psycopg.connect(**params, autocommit=True)
            self._local.db = db
        return db


_SELECT_SQL = (
    "SELECT idempotency_key, kind, outcome, reference, amount_cents, order_id, "
    "charge_reference, decline_code FROM gateway_ledger WHERE idempotency_key = %s"
)


def _take_timeout() -> bool:
    """Consume one "time out the next call" fault, if any is set."""
    import redis

    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
    )
    try:
        return bool(client.eval(_TAKE_TIMEOUT_LUA, 1, TIMEOUTS_KEY))
    finally:
        client.close()


_TAKE_TIMEOUT_LUA = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) return 1 end
return 0
"""


def set_timeouts(count: int) -> None:
    """Make the simulated gateway time out on its next `count` calls (tests)."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.set(TIMEOUTS_KEY, count)
    finally:
        client.close()


def get_gateway() -> PaymentGateway:
    gateway: PaymentGateway = import_string(settings.PAYMENT_GATEWAY)()
    return gateway
