"""Check the money invariant: the payment gateway's ledger against the events."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from commands_app.reconciliation import money_problems, open_money_effects


class Command(BaseCommand):
    help = (
        "Compare, per order, what the gateway captured and refunded with the "
        "payment events; exit 1 on a mismatch. Totals are compared only once "
        "no charge or refund is pending or parked."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        open_effects = open_money_effects()
        problems = money_problems(drained=not open_effects)
        if open_effects:
            self.stdout.write(
                f"{open_effects} charge(s) or refund(s) still open: only the "
                "double-capture and over-refund checks ran."
            )
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"{len(problems)} money problem(s)")
        self.stdout.write("money: the ledger and the events agree")
