"""Rebuild read models from the event store without downtime."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from projections.rebuild import ProgressBar, RebuildError, rebuild
from projections.registry import projector_names


class Command(BaseCommand):
    help = "Rebuild projections into shadow tables, then swap them in."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--projection", choices=projector_names())
        parser.add_argument("--no-progress-bar", action="store_true")
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        names = [options["projection"]] if options["projection"] else projector_names()
        for name in names:
            bar = None
            if not options["no_progress_bar"]:
                bar = ProgressBar(name, lambda text: self.stderr.write(text, ending=""))
            try:
                rebuild(name, batch_size=options["batch_size"], progress=bar)
            except RebuildError as exc:
                raise CommandError(str(exc)) from exc
            finally:
                if bar is not None:
                    bar.close()
            self.stdout.write(f"{name}: rebuilt")
