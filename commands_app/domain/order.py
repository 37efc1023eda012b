"""The Order aggregate: placed, payment pending, paid, shipped or cancelled.

An order changes before it is paid: its lines may be replaced while it is
`placed` (stock moves by the difference, see `decisions.update_order`) and its
shipping address until it ships.

Paying is a process: `request_payment` records `PaymentRequested` (the order is
`payment_pending`), the charge runs afterwards as an effect, and its outcome
comes back as `PaymentCaptured` (paid) or `PaymentDeclined` (placed again).
Cancelling a paid order records the refund it owes; `OrderRefunded` records
what the gateway refunded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from .aggregate import Aggregate
from .errors import InvalidStateError, OrderNotFoundError, PaymentInProgressError
from .events import (
    Address,
    Event,
    OrderCancelled,
    OrderLine,
    OrderLinesChanged,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
    OrderShipped,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRequested,
    ShippingAddressChanged,
)


class OrderStatus(StrEnum):
    """Where an order is in its life cycle.

    The values are the strings the read side stores and filters by
    (`read_order_summary.status`, `?status=`): a member equals its value.
    """

    PLACED = "placed"
    PAYMENT_PENDING = "payment_pending"
    PAID = "paid"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


# The shop sells in one currency; every order records it (`OrderPlaced`).
CURRENCY = "EUR"


def order_stream(order_id: UUID) -> str:
    return Order.stream_for(order_id)


@dataclass(kw_only=True)
class Order(Aggregate[UUID]):
    STREAM_TYPE = "order"

    customer_id: int = 0
    # None until the order is placed (`OrderPlaced` is its stream's first event).
    status: OrderStatus | None = None
    lines: tuple[OrderLine, ...] = ()
    shipping_address: Address | None = None
    currency: str = CURRENCY
    total_cents: int = 0
    paid_cents: int = 0
    payment_id: str = ""
    payment_reference: str = ""
    pending_payment_id: str = ""
    refunded_cents: int = 0

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
        order.record(
            OrderPlaced(
                order_id=order_id,
                customer_id=customer_id,
                lines=lines,
                shipping_address=shipping_address,
                total_cents=sum(line.total_cents for line in lines),
                currency=CURRENCY,
            )
        )
        return order

    @classmethod
    def from_events(cls, aggregate_id: UUID, events: Iterable[Event]) -> Order:
        """Load an order; refuse a stream without events as not found."""
        order = super().from_events(aggregate_id, events)
        if not order.version:
            raise OrderNotFoundError("No such order.", order_id=str(aggregate_id))
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
        self._check_not_paying()
        self._check_status(OrderStatus.PLACED, action="paid")

    def request_payment(self, *, payment_id: UUID, card_last4: str) -> PaymentRequested:
        """Record that the customer asked to pay; the charge runs as an effect."""
        self.check_payable()
        event = PaymentRequested(
            order_id=self.id,
            payment_id=payment_id,
            amount_cents=self.total_cents,
            card_last4=card_last4,
        )
        self.record(event)
        return event

    def is_awaiting(self, payment_id: str) -> bool:
        """Tell whether `payment_id` is the charge this order is waiting for."""
        return (
            self.status == OrderStatus.PAYMENT_PENDING
            and self.pending_payment_id == str(payment_id)
        )

    def capture(
        self, *, payment_id: str, amount_cents: int, card_last4: str, reference: str
    ) -> None:
        self._check_awaiting(payment_id)
        self.record(
            PaymentCaptured(
                order_id=self.id,
                payment_id=payment_id,
                amount_cents=amount_cents,
                card_last4=card_last4,
                gateway_reference=reference,
            )
        )

    def decline(self, *, payment_id: str, decline_code: str) -> None:
        self._check_awaiting(payment_id)
        self.record(
            PaymentDeclined(
                order_id=self.id, payment_id=payment_id, decline_code=decline_code
            )
        )

    def cancel(self, *, reason: str, cancelled_by: int) -> None:
        self._check_not_paying()
        self._check_status(OrderStatus.PLACED, OrderStatus.PAID, action="cancelled")
        self.record(
            OrderCancelled(
                order_id=self.id,
                reason=reason,
                cancelled_by=cancelled_by,
                refund_cents=self.paid_cents,
            )
        )

    def refund(self, *, refund_id: str, amount_cents: int, reference: str) -> None:
        """Record what the gateway refunded of a cancelled order's payment."""
        self._check_status(OrderStatus.CANCELLED, action="refunded")
        if amount_cents > self.paid_cents - self.refunded_cents:
            raise InvalidStateError(
                "The refund exceeds what was paid.",
                order_id=str(self.id),
                paid_cents=self.paid_cents,
                refunded_cents=self.refunded_cents,
            )
        self.record(
            OrderRefunded(
                order_id=self.id,
                refund_id=refund_id,
                payment_id=self.payment_id,
                amount_cents=amount_cents,
                gateway_reference=reference,
            )
        )

    def check_lines_changeable(self) -> None:
        """Refuse to change the lines of an order being paid, paid or closed."""
        self._check_not_paying()
        self._check_status(OrderStatus.PLACED, action="given new lines")

    def change_lines(self, lines: tuple[OrderLine, ...], *, changed_by: int) -> bool:
        """Replace the lines of an unpaid order; return False if they are the same.

        The caller moves the stock by the difference (`reserved_quantities`
        before and after) in the same append.
        """
        self.check_lines_changeable()
        if lines == self.lines:
            return False
        self.record(
            OrderLinesChanged(
                order_id=self.id,
                lines=lines,
                total_cents=sum(line.total_cents for line in lines),
                changed_by=changed_by,
            )
        )
        return True

    def change_shipping_address(self, address: Address, *, changed_by: int) -> bool:
        """Change where an order not yet shipped goes; return False if unchanged."""
        self._check_status(
            OrderStatus.PLACED,
            OrderStatus.PAYMENT_PENDING,
            OrderStatus.PAID,
            action="sent to another address",
        )
        if address == self.shipping_address:
            return False
        self.record(
            ShippingAddressChanged(
                order_id=self.id, shipping_address=address, changed_by=changed_by
            )
        )
        return True

    def ship(self, *, tracking_number: str) -> None:
        self._check_status(OrderStatus.PAID, action="shipped")
        self.record(OrderShipped(order_id=self.id, tracking_number=tracking_number))

    def apply(self, event: Event) -> None:
        match event:
            case OrderPlaced():
                self.customer_id = event.customer_id
                self.lines = event.lines
                self.shipping_address = event.shipping_address
                self.currency = event.currency
                self.total_cents = event.total_cents
                self.status = OrderStatus.PLACED
            case OrderLinesChanged():
                self.lines = event.lines
                self.total_cents = event.total_cents
            case ShippingAddressChanged():
                self.shipping_address = event.shipping_address
            case PaymentRequested():
                self.pending_payment_id = str(event.payment_id)
                self.status = OrderStatus.PAYMENT_PENDING
            case PaymentCaptured():
                self.paid_cents = event.amount_cents
                self.payment_id = event.payment_id
                self.payment_reference = event.gateway_reference
                self.pending_payment_id = ""
                self.status = OrderStatus.PAID
            case OrderPaid():  # built in memory; stored ones load as captured
                self.paid_cents = event.amount_cents
                self.payment_id = self.payment_reference = event.payment_id
                self.pending_payment_id = ""
                self.status = OrderStatus.PAID
            case PaymentDeclined():
                self.pending_payment_id = ""
                self.status = OrderStatus.PLACED
            case OrderRefunded():
                self.refunded_cents += event.amount_cents
            case OrderCancelled():
                self.status = OrderStatus.CANCELLED
            case OrderShipped():
                self.status = OrderStatus.SHIPPED

    def _check_not_paying(self) -> None:
        if self.status == OrderStatus.PAYMENT_PENDING:
            raise PaymentInProgressError(
                "A payment for this order is in progress; wait for its outcome.",
                order_id=str(self.id),
                status=self.status,
            )

    def _check_awaiting(self, payment_id: str) -> None:
        if not self.is_awaiting(payment_id):
            raise InvalidStateError(
                "The order is not waiting for this payment.",
                order_id=str(self.id),
                status=self.status,
                payment_id=payment_id,
            )

    def _check_status(self, *allowed: OrderStatus, action: str) -> None:
        if self.status not in allowed:
            raise InvalidStateError(
                f"A {self.status} order cannot be {action}.",
                order_id=str(self.id),
                status=self.status,
            )
