"""Re-wrap every customer's data key with the current master key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from commands_app import pii


class Command(BaseCommand):
    help = (
        "Re-wrap every customer's data key with PII_MASTER_KEY, in short "
        "transactions; run it after moving the old master key to "
        "PII_PREVIOUS_MASTER_KEYS, then remove the old key from there. Events "
        "are not touched: their data keys stay the same. Safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        current, _keys = pii.keyring()
        count = pii.rotate(batch=options["batch"])
        self.stdout.write(
            f"Re-wrapped {count} data key(s) with master key {current}; "
            f"{pii.keys_not_wrapped_by(current)} left under another master key."
        )
