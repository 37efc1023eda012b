"""Route projection models to the read database and everything else to default."""

from __future__ import annotations

from typing import Any

READ_APPS = {"projections"}
READ_DB = "read"


class ReadModelRouter:
    """Send the read side's tables to the "read" database, the rest to "default"."""

    def db_for_read(self, model: type, **hints: Any) -> str | None:
        return READ_DB if model._meta.app_label in READ_APPS else None  # type: ignore[attr-defined]

    def db_for_write(self, model: type, **hints: Any) -> str | None:
        return READ_DB if model._meta.app_label in READ_APPS else None  # type: ignore[attr-defined]

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        same = (obj1._meta.app_label in READ_APPS) == (
            obj2._meta.app_label in READ_APPS
        )
        return same or None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        if app_label in READ_APPS:
            return db == READ_DB
        return db != READ_DB
