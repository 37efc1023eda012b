"""The Order aggregate: placed, paid, shipped or cancelled."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

from .commands import Charge
from .errors import InvalidStateError, OrderNotFoundError
from .events import (
    Address,
    Event,
    OrderCancelled,
    OrderLine,
    OrderPaid,
    OrderPlaced,
    OrderShipped,
)

PLACED, PAID, SHIPPED, CANCELLED = "placed", "paid", "shipped", "cancelled"


def order_stream(order_id: UUID) -> str:
    return f"order-{order_id}"


@dataclass(kw_only=True)
class Order:
    id: UUID
    customer_id: int = 0
    status: str = ""
    lines: tuple[OrderLine, ...] = ()
    total_cents: int = 0
    paid_cents: int = 0
    version: int = 0
    pending_events: list[Event] = field(default_factory=list)

    @property
    def stream(self) -> str:
        return order_stream(self.id)

    @classmethod
    def place(
        cls,
        *,
        order_id: UUID,
        customer_id: int,
        lines: tuple[OrderLine, ...],
        shipping_address: Address,
    ) -> Order:
        order = cls(id=order_id)
        order._record(
            OrderPlaced(
                order_id=order_id,
                customer_id=customer_id,
                lines=lines,
                shipping_address=shipping_address,
                total_cents=sum(line.total_cents for line in lines),
            )
        )
        return order

    @classmethod
    def from_events(cls, order_id: UUID, events: Iterable[Event]) -> Order:
        order = cls(id=order_id)
        for event in events:
            order.apply(event)
            order.version += 1
        if not order.version:
            raise OrderNotFoundError("No such order.", order_id=str(order_id))
        return order

    def reserved_quantities(self) -> dict[UUID, int]:
        """Return the quantity of each product that placing this order reserved.

        Placing reserves each product once, for the sum of its lines, so the
        lines are the order's own record of what to give back when it is
        cancelled; the products need not remember every order.
        """
        quantities: dict[UUID, int] = {}
        for line in self.lines:
            quantities[line.product_id] = (
                quantities.get(line.product_id, 0) + line.quantity
            )
        return quantities

    def check_visible_to(self, *, user_id: int, is_staff: bool) -> None:
        """Treat another customer's order as absent, never as forbidden."""
        if not is_staff and self.customer_id != user_id:
            raise OrderNotFoundError("No such order.", order_id=str(self.id))

    def check_payable(self) -> None:
        self._check_status(PLACED, action="paid")

    def pay(self, charge: Charge) -> None:
        self.check_payable()
        self._record(
            OrderPaid(
                order_id=self.id,
                amount_cents=charge.amount_cents,
                payment_id=charge.payment_id,
                card_last4=charge.card_last4,
            )
        )

    def cancel(self, *, reason: str, cancelled_by: int) -> None:
        self._check_status(PLACED, PAID, action="cancelled")
        self._record(
            OrderCancelled(
                order_id=self.id,
                reason=reason,
                cancelled_by=cancelled_by,
                refund_cents=self.paid_cents,
            )
        )

    def ship(self, *, tracking_number: str) -> None:
        self._check_status(PAID, action="shipped")
        self._record(OrderShipped(order_id=self.id, tracking_number=tracking_number))

    def apply(self, event: Event) -> None:
        match event:
            case OrderPlaced():
                self.customer_id = event.customer_id
                self.lines = event.lines
                self.total_cents = event.total_cents
                self.status = PLACED
            case OrderPaid():
                self.paid_cents = event.amount_cents
                self.status = PAID
            case OrderCancelled():
                self.status = CANCELLED
            case OrderShipped():
                self.status = SHIPPED

    def _check_status(self, *allowed: str, action: str) -> None:
        if self.status not in allowed:
            raise InvalidStateError(
                f"A {self.status} order cannot be {action}.",
                order_id=str(self.id),
                status=self.status,
            )

    def _record(self, event: Event) -> None:
        self.apply(event)
        self.pending_events.append(event)
