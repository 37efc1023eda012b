"""A request thread that sleeps while it waits gives its pooled connections back.

Both sides' waits use it: the write side's `?wait=` for a command's final
status (`commands_app.acceptance.wait_for_final`) and the read side's
`min_position` (`queries_app.consistency.wait_for_position`).
"""

from __future__ import annotations

from django.db import connections


def release_pooled_connections() -> None:
    """Give this thread's pooled database connections back while it sleeps.

    The web tier borrows connections from a pool smaller than its thread count
    (config/connections.py): a waiting request must not hold one between polls.
    Connections that are not pooled, or inside a transaction, stay.
    """
    for connection in connections.all(initialized_only=True):
        if getattr(connection, "pool", None) and not connection.in_atomic_block:
            connection.close()
