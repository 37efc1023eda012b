"""The payment gateway: an interface and a simulated slow gateway.

The real gateway is outside the system; `SimulatedGateway` stands in for it in
development and tests. Card numbers are tokenised in the web process before the
command is stored, so only a token and the last four digits ever reach storage.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from .domain.commands import Charge
from .domain.errors import PaymentDeclinedError

# Card numbers that the simulated gateway declines, as test gateways do.
DECLINED_TEST_CARDS = frozenset({"4000000000000002", "4000000000009995"})


@dataclass(frozen=True)
class CardToken:
    token: str
    last4: str


class PaymentGateway(Protocol):
    def tokenize(self, *, number: str, exp_month: int, exp_year: int) -> CardToken: ...

    def charge(self, *, token: str, amount_cents: int, idempotency_key: str) -> Charge:
        """Charge a tokenised card; the same key never charges twice."""
        ...


class SimulatedGateway:
    """A deterministic stand-in for a slow card gateway (latency from settings)."""

    def tokenize(self, *, number: str, exp_month: int, exp_year: int) -> CardToken:
        # A random token, as a real gateway's vault hands out: unlike a hash of
        # the number, it reveals nothing about the card, whatever else leaks.
        outcome = "declined" if number in DECLINED_TEST_CARDS else "ok"
        return CardToken(
            token=f"tok_{outcome}_{secrets.token_hex(12)}", last4=number[-4:]
        )

    def charge(self, *, token: str, amount_cents: int, idempotency_key: str) -> Charge:
        time.sleep(settings.PAYMENT_GATEWAY_LATENCY_MS / 1000)
        if token.startswith("tok_declined_"):
            raise PaymentDeclinedError(
                "The card was declined.", decline_code="card_declined"
            )
        payment_id = "ch_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        return Charge(payment_id=payment_id, amount_cents=amount_cents, card_last4="")


def get_gateway() -> PaymentGateway:
    gateway: PaymentGateway = import_string(settings.PAYMENT_GATEWAY)()
    return gateway
