"""RabbitMQ for the tests that run on it: a virtual host per test run, a restart.

The server is shared (no private instance, unlike Redis and PostgreSQL): each
test session, and the fault tests' stack, get a virtual host of their own so
that parallel runs never consume each other's tasks. `rabbitmqctl` does the
administration (the management plugin is not needed).
"""

from __future__ import annotations

import shutil
import subprocess
from urllib.parse import quote, unquote, urlsplit, urlunsplit

SCHEMES = ("amqp://", "amqps://", "pyamqp://")


def is_rabbitmq(url: str) -> bool:
    return url.startswith(SCHEMES)


def vhost_of(url: str) -> str:
    path = urlsplit(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def with_vhost(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


def rabbitmqctl(*args: str, timeout: float = 60) -> str:
    out = subprocess.run(
        [shutil.which("rabbitmqctl") or "rabbitmqctl", "-q", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {out.stdout}{out.stderr}")
    return out.stdout


def add_vhost(url: str) -> None:
    """Create the URL's virtual host (if not the default one) for its user."""
    vhost = vhost_of(url)
    if vhost == "/":
        return
    user = unquote(urlsplit(url).username or "guest")
    if vhost not in rabbitmqctl("list_vhosts", "name").split():
        rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")


def delete_vhost(url: str) -> None:
    """Delete the URL's virtual host with its queues (never the default one)."""
    vhost = vhost_of(url)
    if vhost != "/":
        rabbitmqctl("delete_vhost", vhost)


def restart_app(down_seconds: float = 1.0) -> None:
    """Stop and start the RabbitMQ application: every connection drops.

    Durable (quorum) queues and their persistent messages survive it.
    """
    import time

    rabbitmqctl("stop_app")
    time.sleep(down_seconds)
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup")
