"""The `eventsourcing` library's side of figure 4: one aggregate type, restocked."""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event


class Stock(Aggregate):
    @event("Registered")
    def __init__(self) -> None:
        pass

    @event("Restocked")
    def restock(self, quantity: int) -> None:
        pass
