"""Read-side bookkeeping: each projection's checkpoint in the read database."""

from __future__ import annotations

from django.db import models


class Checkpoint(models.Model):
    """How far one projection has applied the event store, in reader order."""

    name = models.CharField(max_length=64, primary_key=True)
    tx_id = models.BigIntegerField(
        default=0, help_text="Transaction id of the last event applied."
    )
    position = models.BigIntegerField(
        default=0, help_text="Global position of the last event applied."
    )
    updated_at = models.DateTimeField(auto_now=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        db_table = "read_checkpoints"

    def __str__(self) -> str:
        return f"{self.name} @ {self.position}"
