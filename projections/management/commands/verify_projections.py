"""Rebuild read models aside and compare them with the live ones."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from projections.rebuild import RebuildError, verify
from projections.registry import projector_names


class Command(BaseCommand):
    help = "Rebuild projections aside and compare checksums with the live tables."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--projection", choices=projector_names())
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        names = [options["projection"]] if options["projection"] else projector_names()
        different = []
        for name in names:
            try:
                result = verify(name, batch_size=options["batch_size"])
            except RebuildError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"{name}: {'equal' if result.equal else 'different'}")
            if not result.equal:
                different.append(name)
                for table, live in result.live.items():
                    self.stdout.write(
                        f"  {table}: live {live}, rebuilt {result.rebuilt[table]}"
                    )
        if different:
            raise CommandError(f"different: {', '.join(different)}")
