"""Connection options that bound how long a vanished host keeps its locks.

A host that dies without closing its sockets (power loss, a partition) leaves
its PostgreSQL sessions open: their transactions, and the advisory locks that
make one runner per projection, stay until the server notices. These options
make it notice within a known time:

- the server's TCP keepalives on the session (`tcp_keepalives_*`) and
  `tcp_user_timeout` end a session whose peer stopped answering after
  `keepalives_idle + keepalives_interval * keepalives_count` seconds;
- `idle_in_transaction_session_timeout` ends a session that sits in an open
  transaction without sending anything, dead host or stuck process alike;
- `client_connection_check_interval` lets a running statement notice it;
- the client's libpq keepalives let a process notice a server that vanished.

`client_connection_check_interval` needs PostgreSQL 14 or later (15 here).
Behind a pooler that refuses startup options (PgBouncer without
`ignore_startup_parameters = options`), set the server-side ones with
`ALTER ROLE … SET` instead.
"""

from __future__ import annotations

from typing import Any


def session_options(
    *,
    idle_in_transaction_seconds: float,
    keepalives_idle: int,
    keepalives_interval: int,
    keepalives_count: int,
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Return the OPTIONS entries (libpq keywords) for one database."""
    user_timeout_ms = (keepalives_idle + keepalives_interval * keepalives_count) * 1000
    idle_ms = int(idle_in_transaction_seconds * 1000)
    server = {
        "idle_in_transaction_session_timeout": str(idle_ms),
        "tcp_keepalives_idle": str(keepalives_idle),
        "tcp_keepalives_interval": str(keepalives_interval),
        "tcp_keepalives_count": str(keepalives_count),
        "tcp_user_timeout": str(user_timeout_ms),
        "client_connection_check_interval": str(keepalives_interval * 1000),
        **(extra or {}),
    }
    return {
        "keepalives": 1,
        "keepalives_idle": keepalives_idle,
        "keepalives_interval": keepalives_interval,
        "keepalives_count": keepalives_count,
        "tcp_user_timeout": user_timeout_ms,
        "options": " ".join(f"-c {name}={value}" for name, value in server.items()),
    }
