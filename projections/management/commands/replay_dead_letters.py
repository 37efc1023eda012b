"""Replay or discard the events projections parked."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from projections.dead_letters import discard_dead_letters, replay_dead_letters
from projections.registry import projector_names


class Command(BaseCommand):
    help = "Re-apply parked events in order per stream, or discard some by id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--projection", choices=projector_names())
        parser.add_argument("--discard", type=int, nargs="+", metavar="ID")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["discard"]:
            count = discard_dead_letters(options["discard"])
            self.stdout.write(f"discarded {count}")
            return
        locked_out = []
        for name, result in replay_dead_letters(options["projection"]).items():
            self.stdout.write(f"{name}: {result}")
            if result.locked_out:
                locked_out.append(name)
        if locked_out:
            raise CommandError(f"not replayed (lock held): {', '.join(locked_out)}")
