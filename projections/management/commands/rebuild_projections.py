"""Rebuild read models from the event store without downtime."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from projections.rebuild import BATCH_SIZE, ProgressBar, RebuildError, rebuild_many
from projections.registry import projector_names


class Command(BaseCommand):
    help = "Rebuild projections into shadow tables, then swap them in."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--projection", choices=projector_names())
        parser.add_argument("--no-progress-bar", action="store_true")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)

    def handle(self, *args: Any, **options: Any) -> None:
        names = [options["projection"]] if options["projection"] else projector_names()
        bar = None
        if not options["no_progress_bar"]:
            label = names[0] if len(names) == 1 else "all projections"
            bar = ProgressBar(label, lambda text: self.stderr.write(text, ending=""))
        try:
            # One pass over the event store for all of them.
            rebuild_many(names, batch_size=options["batch_size"], progress=bar)
        except RebuildError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if bar is not None:
                bar.close()
        for name in names:
            self.stdout.write(f"{name}: rebuilt")
