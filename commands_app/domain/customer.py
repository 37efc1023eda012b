"""The Customer aggregate: only what the write side decides about a customer.

A customer is a user (an integer id). Their stream records that they were
forgotten; forgetting twice changes nothing (the erasure is idempotent, and a
second request succeeds without a second event).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import CustomerNotFoundError
from .events import CustomerForgotten, Event


def customer_stream(customer_id: int) -> str:
    return f"customer-{customer_id}"


@dataclass(frozen=True, kw_only=True)
class ForgetCustomer:
    """Erase a customer's personal data by destroying their key."""

    customer_id: int


@dataclass(kw_only=True)
class Customer:
    id: int
    forgotten: bool = False
    version: int = 0
    pending_events: list[Event] = field(default_factory=list)

    @property
    def stream(self) -> str:
        return customer_stream(self.id)

    @classmethod
    def from_events(cls, customer_id: int, events: Iterable[Event]) -> Customer:
        customer = cls(id=customer_id)
        for event in events:
            customer.apply(event)
            customer.version += 1
        return customer

    def apply(self, event: Event) -> None:
        if isinstance(event, CustomerForgotten):
            self.forgotten = True

    def forget(self) -> None:
        """Record the erasure once; a second request records nothing."""
        if self.forgotten:
            return
        event = CustomerForgotten(customer_id=self.id)
        self.apply(event)
        self.pending_events.append(event)


def forget_customer(
    command: ForgetCustomer, *, customer: Customer, exists: bool
) -> Customer:
    """Decide a forget-customer: refuse an unknown customer, else forget once."""
    if not exists and not customer.forgotten:
        raise CustomerNotFoundError(
            "No such customer.", customer_id=command.customer_id
        )
    customer.forget()
    return customer
