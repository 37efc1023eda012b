"""A plain-text progress bar for `manage.py rebuild_projections`."""

from __future__ import annotations

import sys
from collections.abc import Callable

from commands_app.eventstore import Position


class ProgressBar:
    """A plain-text progress bar (stderr by default), by event position."""

    def __init__(
        self,
        label: str,
        write: Callable[[str], object] | None = None,
        width: int = 30,
    ) -> None:
        self.label = label
        self.write = write or self._stderr
        self.width = width
        self.shown = False

    @staticmethod
    def _stderr(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    def __call__(self, done: Position, target: Position) -> None:
        share = 1.0 if target.position <= 0 else done.position / target.position
        share = min(1.0, share)
        filled = int(share * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        self.write(
            f"\r{self.label:<24} [{bar}] {share:6.1%} "
            f"position {done.position}/{target.position}"
        )
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.write("\n")
