"""The Customer aggregate: only what the write side decides about a customer.

A customer is a user (an integer id). Their stream records that they were
forgotten; forgetting twice changes nothing (the erasure is idempotent, and a
second request succeeds without a second event).
"""

from __future__ import annotations

from dataclasses import dataclass

from .aggregate import Aggregate
from .errors import CustomerNotFoundError
from .events import CustomerForgotten, Event


def customer_stream(customer_id: int) -> str:
    return Customer.stream_for(customer_id)


@dataclass(frozen=True, kw_only=True)
class ForgetCustomer:
    """Erase a customer's personal data by destroying their key."""

    customer_id: int


@dataclass(kw_only=True)
class Customer(Aggregate[int]):
    STREAM_TYPE = "customer"

    forgotten: bool = False

    def apply(self, event: Event) -> None:
        if isinstance(event, CustomerForgotten):
            self.forgotten = True

    def forget(self) -> None:
        """Record the erasure once; a second request records nothing."""
        if self.forgotten:
            return
        self.record(CustomerForgotten(customer_id=self.id))


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
