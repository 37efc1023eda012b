"""Route projection models to the read database and everything else to default.

Inside a read API request, reads of projection models go to the copy of the
read database the request is pinned to (a replica, queries_app/replicas.py);
writes always go to the primary, "read". Replicas are never migrated.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from queries_app.replicas import pinned_alias

READ_APPS = {"projections"}
READ_DB = "read"


class ReadModelRouter:
    """Send the read side's tables to the "read" database, the rest to "default"."""

    def db_for_read(self, model: type, **hints: Any) -> str | None:
        if model._meta.app_label not in READ_APPS:  # type: ignore[attr-defined]
            return None
        return pinned_alias() or READ_DB

    def db_for_write(self, model: type, **hints: Any) -> str | None:
        return READ_DB if model._meta.app_label in READ_APPS else None  # type: ignore[attr-defined]

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        same = (obj1._meta.app_label in READ_APPS) == (
            obj2._meta.app_label in READ_APPS
        )
        return same or None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        if db in getattr(settings, "READ_REPLICA_ALIASES", ()):
            return False
        if app_label in READ_APPS:
            return db == READ_DB
        return db != READ_DB
