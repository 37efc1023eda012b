"""A commit-driven relay: LISTEN on a channel, drain on every wake-up, poll as a net.

A relay is a channel name and a drain function. A writer that leaves work in
a table does `pg_notify(channel, '')` in its transaction, so PostgreSQL wakes
the listeners when (and only if) it commits. The relay's thread LISTENs on a
psycopg connection of its own, coalesces the wake-ups that arrived meanwhile
into one drain, and drains every `poll_seconds` anyway: a notification lost
(the listening connection broke, the relay started after the commit) costs at
most one poll interval. The drain function does the work and must be safe to
run in several relays at once (claim rows with `FOR UPDATE SKIP LOCKED` and a
lease, as `commands_app.effects.drain_once` does).

A relay may be given `coalesce_seconds`: when commits notified it while it
drained (the work arrives faster than one drain at a time), it waits that
long before the next drain, so that the next one takes all that arrived
meanwhile in one go. At rest a drain ends before the next commit and the
next wake-up drains at once; under load the fixed cost of a drain (the
projector's round: a read transaction, locks, checkpoints) is paid once per
interval rather than once per commit or two.

A relay may be given `held`: while it answers true, the relay does not drain
on a notification (it asks again every `HELD_RECHECK_SECONDS`), because
someone else is taking the work (the command relay holds back while its
worker's processes take pending commands themselves, `commands_app.relay`);
it still drains every `poll_seconds`, so that a hold that lasts is no reason
for work to wait.

`Relay.run_once()` is the testable unit; `Relay.start()` runs it in a daemon
thread; a `QueueRelayStep` runs one inside the workers of a queue, so that
Celery starts and stops it with the worker. Three relays use it: the effects
(`RelayStep`) and the publishing of accepted commands (`CommandsRelayStep`) in
the command workers, and the projector (`projections.tasks.ProjectorRelayStep`)
in the projection workers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from celery import bootsteps
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)

# How often a held relay asks again whether it may drain.
HELD_RECHECK_SECONDS = 0.005


def listen_connection(alias: str = "default") -> psycopg.Connection[Any]:
    """Open an autocommit psycopg connection to a Django database, for LISTEN."""
    params = connections[alias].get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


class Relay:
    """Drain `drain()` whenever `channel` is notified, and every `poll_seconds`."""

    def __init__(
        self,
        channel: str,
        drain: Callable[[], int],
        *,
        poll_seconds: float = 1.0,
        coalesce_seconds: float = 0.0,
        connect: Callable[[], psycopg.Connection[Any]] = listen_connection,
        held: Callable[[], bool] | None = None,
    ) -> None:
        self.channel = channel
        self.drain = drain
        self.poll_seconds = poll_seconds
        self.coalesce_seconds = coalesce_seconds
        self.connect = connect
        self.held = held
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.drains = 0
        self._listener: psycopg.Connection[Any] | None = None
        self._checked_at = -float("inf")
        self._drained_at = -float("inf")
        self._failed = False

    def listen(self) -> psycopg.Connection[Any]:
        if self._listener is None or self._listener.closed or self._listener.broken:
            self._listener = self.connect()
            # The identifier is ours, never input.
            self._listener.execute(f'LISTEN "{self.channel}"')
        return self._listener

    def run_once(self, *, wait: bool = True) -> int:
        """Drain once, then wait for a notification or the poll interval.

        Return how many items the drain handled. The drain runs first, so a
        relay that (re)starts picks up what was committed while it was away.
        A held relay only waits `HELD_RECHECK_SECONDS` (the notifications
        that arrive meanwhile are coalesced when it drains again), unless its
        last drain is `poll_seconds` old.
        """
        listener = self.listen()
        if (
            self.held is not None
            and time.monotonic() - self._drained_at < self.poll_seconds
            and self.held()
        ):
            if wait:
                self.stopping.wait(HELD_RECHECK_SECONDS)
            return 0
        handled = self._drain()
        if wait and not handled and not self.stopping.is_set():
            if self.coalesce_seconds and self._woken(listener, timeout=0.0):
                # Notified while it drained: let more arrive for the next drain.
                self.stopping.wait(self.coalesce_seconds)
                self._woken(listener, timeout=0.0)
            elif self._woken(listener, timeout=self.poll_seconds):
                # Coalesce the wake-ups queued meanwhile into the next drain.
                self._woken(listener, timeout=0.0)
        return handled

    @staticmethod
    def _woken(listener: psycopg.Connection[Any], *, timeout: float) -> bool:
        """Take the notifications that arrive within `timeout`; say if there were."""
        woken = False
        for _ in listener.notifies(
            timeout=timeout, stop_after=None if timeout == 0 else 1
        ):
            woken = True
        return woken

    def _drain(self) -> int:
        # Django's connection checks (a `SELECT 1` per database used, with
        # CONN_HEALTH_CHECKS) once per poll interval and after a failure, not
        # around every drain: a busy relay drains hundreds of times a second.
        now = time.monotonic()
        if self._failed or now - self._checked_at >= self.poll_seconds:
            close_old_connections()
            self._checked_at = now
        self._failed = True
        self.drains += 1
        self._drained_at = now
        handled = self.drain()
        self._failed = False
        return handled

    def run(self) -> None:
        """Loop until stopped; survive database outages with a pause."""
        while not self.stopping.is_set():
            try:
                self.run_once()
            except Exception:
                logger.warning("relay %s: drain failed", self.channel, exc_info=True)
                self.close()
                self.stopping.wait(min(self.poll_seconds * 2, 5.0))
        self.close()
        connections.close_all()

    def start(self) -> Relay:
        self.thread = threading.Thread(
            target=self.run, name=f"relay-{self.channel}", daemon=True
        )
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread: wake it with a notification, then join it."""
        self.stopping.set()
        if self.thread is None:
            return
        try:
            with self.connect() as waker:
                waker.execute("SELECT pg_notify(%s, 'stop')", [self.channel])
        except Exception:  # it stops at its next poll anyway
            logger.debug("relay %s: could not wake it", self.channel, exc_info=True)
        self.thread.join(timeout)

    def close(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            except Exception:  # already broken
                logger.debug("relay %s: close failed", self.channel, exc_info=True)
            self._listener = None


class QueueRelayStep(bootsteps.StartStopStep):
    """Run a relay in a thread of a worker that consumes `queue` (a base class).

    After the pool, so that prefork children are forked before the thread
    starts; stopped (and joined) when the worker shuts down. A subclass names
    the queue, the setting that turns it off, and makes the relay.
    """

    requires = {"celery.worker.components:Pool"}
    queue = ""
    enabled_setting = ""

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self.relay: Relay | None = None

    def make_relay(self, worker: Any) -> Relay:
        raise NotImplementedError

    def start(self, worker: Any) -> None:
        from django.conf import settings

        # No -Q: the worker consumes every declared queue (the default one).
        queues = set(worker.app.amqp.queues.consume_from or worker.app.amqp.queues)
        if not getattr(settings, self.enabled_setting) or self.queue not in queues:
            return
        self.relay = self.make_relay(worker).start()
        logger.info("%s relay started", self.relay.channel)

    def stop(self, worker: Any) -> None:
        if self.relay is not None:
            self.relay.stop()
            self.relay = None

    shutdown = stop
