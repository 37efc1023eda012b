"""Rebuild read models aside and compare them with the live ones."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from projections.rebuild import BATCH_SIZE, RebuildError, verify_many
from projections.registry import projector_names


class Command(BaseCommand):
    help = "Rebuild projections aside and compare checksums with the live tables."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--projection", choices=projector_names())
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)

    def handle(self, *args: Any, **options: Any) -> None:
        names = [options["projection"]] if options["projection"] else projector_names()
        try:
            results = verify_many(names, batch_size=options["batch_size"])
        except RebuildError as exc:
            raise CommandError(str(exc)) from exc
        different = []
        for result in results:
            name = result.projection
            self.stdout.write(f"{name}: {'equal' if result.equal else 'different'}")
            if not result.equal:
                different.append(name)
                for table, live in result.live.items():
                    self.stdout.write(
                        f"  {table}: live {live}, rebuilt {result.rebuilt[table]}"
                    )
        if different:
            raise CommandError(f"different: {', '.join(different)}")
