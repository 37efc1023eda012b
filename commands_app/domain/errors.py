"""Refusals: business rules that reject a command, each with a stable code."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Refuse a command for a business reason; never retried, never an event."""

    code = "rejected"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InsufficientStockError(DomainError):
    code = "insufficient_stock"


class ProductNotFoundError(DomainError):
    code = "product_not_found"


class OrderNotFoundError(DomainError):
    code = "order_not_found"


class InvalidStateError(DomainError):
    code = "invalid_state"


class PaymentDeclinedError(DomainError):
    code = "payment_declined"


class PaymentInProgressError(DomainError):
    """Refuse a payment or a cancellation while the order's charge is running."""

    code = "payment_in_progress"


class DuplicateSkuError(DomainError):
    code = "duplicate_sku"


class DuplicateIdError(DomainError):
    code = "duplicate_id"


class CustomerNotFoundError(DomainError):
    code = "customer_not_found"
