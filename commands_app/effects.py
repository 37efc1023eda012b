"""Deliver effects: claim a due row with a lease, perform it, complete or retry.

The rows come from `commands_app.outbox` (written with the events that decide
them). Delivery is at least once; a kind's `perform` makes it safe with the
effect's idempotency key. Rules:

- A claim takes due rows (one at first, twice as many after a claim delivered
  fast, up to EFFECTS_CLAIM_BATCH; `ClaimSize`) with `FOR UPDATE SKIP
  LOCKED`, bumps their `attempts` and sets their leases, in one statement: two
  relays never run one effect at once, and a relay that died leaves its
  effects claimable again when the leases run out. A relay delivers what it
  claimed in order; the rows it has not started once half a lease has passed
  (a slow outside call before them), or when a delivery raised out of the
  relay, are given back: due again at once, their attempt still counted (the
  fence only goes up) but not charged to the attempt budget.
- Effects of one kind for one stream are delivered in order: a row is not due
  while an earlier row of the same kind and stream is pending or parked.
- `complete()` marks the row done only if the attempt still holds it (a
  fence); a perform that appends events calls it inside the appending
  transaction, so that the event and "done" commit together.
- A failure is retried after a backoff (doubling, capped); after
  EFFECTS_MAX_ATTEMPTS attempts the row is parked until an operator retries it
  (Django admin, or `retry()`).

`drain_once()` delivers until nothing is due; the effects relay
(`commands_app.relay`, built on `relays`) calls it when woken by NOTIFY, and
every EFFECTS_POLL_SECONDS as a safety net.
"""

from __future__ import annotations

import logging
import time
import typing
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from api.prepared import fetch_models, fetch_one, repairable
from observability import metrics, tracing

from . import eventstore, outbox
from .eventstore import RecordedEvent
from .models import Effect, EffectStatus

logger = logging.getLogger(__name__)


class LostLeaseError(Exception):
    """Raise when another attempt took the effect over (this one is fenced)."""


# The deciding event's columns, named apart from the effect's own.
EVENT_COLUMNS, EVENT_FIELDS = eventstore.columns_as("ev_")

# The next due effects that are each the first open one of their stream (per
# kind, in order), with their deciding events: one round trip for all. `c.id =
# (SELECT min(b.id) …)` is one probe of the open-effects index per candidate
# whatever the table's statistics say; as `NOT EXISTS (an older open one)` it
# was planned, while the statistics were an empty table's, as a scan of every
# open effect per candidate (38 ms for 400 pending, each claim). The
# candidates come in the index's order (due_at, id): the LIMIT stops early.
# `= ANY(ARRAY(…))` runs the locking subquery once, whatever the plan.
_CLAIM_SQL = f"""
WITH claimed AS (
    UPDATE effects AS e SET attempts = e.attempts + 1,
        lease_expires_at = now() + make_interval(secs => %s)
    WHERE e.id = ANY(ARRAY(
        SELECT c.id FROM effects AS c
        WHERE c.status = 'pending' AND c.due_at <= now() AND c.kind = ANY(%s)
          AND (c.lease_expires_at IS NULL OR c.lease_expires_at < now())
          AND c.id = (
              SELECT min(b.id) FROM effects AS b
              WHERE b.kind = c.kind AND b.stream_id = c.stream_id
                AND b.status IN ('pending', 'parked'))
        ORDER BY c.due_at, c.id LIMIT %s FOR UPDATE SKIP LOCKED))
    RETURNING e.*)
SELECT claimed.*, ev.* FROM claimed CROSS JOIN {{alone}}
LEFT JOIN (SELECT {EVENT_COLUMNS} FROM events) AS ev
    ON ev.ev_position = claimed.event_position
ORDER BY claimed.due_at, claimed.id
"""  # noqa: S608 -- constant column lists


def claim_many(limit: int) -> list[Effect]:
    """Claim up to `limit` due effects of registered kinds, in their due order.

    Each comes with its deciding event (`deciding_event`), read in the
    claiming statement and decrypted with one key lookup for them all.
    """
    kinds = sorted(outbox.KINDS)
    if not kinds:
        return []
    claimed = fetch_models(
        Effect, repairable(_CLAIM_SQL), [settings.EFFECTS_LEASE_SECONDS, kinds, limit]
    )
    # An effect without its event is claimed all the same: `deliver` fails it.
    found = [
        (effect, row)
        for effect in claimed
        if (row := [getattr(effect, name) for name in EVENT_FIELDS])[0] is not None
    ]
    events = eventstore.recorded_from_rows([row for _effect, row in found])
    for (effect, _row), event in zip(found, events, strict=True):
        effect.deciding_event = event  # type: ignore[attr-defined]
    return claimed


def deciding_event(effect: Effect) -> RecordedEvent:
    """Return the event that decided the effect (read with its claim, or now)."""
    event = getattr(effect, "deciding_event", None)
    if event is None:
        event = eventstore.read_position(effect.event_position)
    return typing.cast(RecordedEvent, event)


# A claim given back unstarted: the lease goes, and the attempt it counted
# stays (the fence only goes up) but leaves the attempt budget.
_GIVE_BACK_SQL = """
UPDATE effects AS e SET lease_expires_at = NULL,
    retried_at_attempt = e.retried_at_attempt + 1
FROM unnest(%s::bigint[], %s::bigint[]) AS given (id, attempts)
WHERE e.id = given.id AND e.attempts = given.attempts AND e.status = 'pending'
"""


def give_back(claimed: list[Effect]) -> None:
    """Release effects claimed by this attempt and not started, due again now.

    If that fails too (the database may be why), their leases lapse instead.
    """
    if not claimed:
        return
    ids = [effect.id for effect in claimed]
    try:
        with connection.cursor() as cursor:
            cursor.execute(_GIVE_BACK_SQL, [ids, [e.attempts for e in claimed]])
    except Exception:
        logger.warning("could not give effects %s back", ids, exc_info=True)


# Relays drain under this advisory lock, shared; whoever holds it exclusively
# (`pg_advisory_lock`, e.g. an operator or a test driving effects itself)
# pauses every relay until it lets go.
DRAIN_LOCK = 0x45464643  # "EFFC"


# The most effects one drain delivers before it lets its caller loop.
DRAIN_LIMIT = 500


# A claim delivered within this long lets the next claim take twice as many
# effects (up to EFFECTS_CLAIM_BATCH); a slower one halves it.
FAST_CLAIM_SECONDS = 0.1


class ClaimSize:
    """How many effects a process's next claim takes.

    One at first, doubling while claims are delivered fast (e-mails: many
    per claim under load) and halving when one is not (a gateway's calls:
    one per claim, so that the relays of other workers take the others
    meanwhile, as they would from claims of one). Only a hint: relays of one
    process that share it at once just claim more or fewer.
    """

    def __init__(self) -> None:
        self.size = 1

    def take(self, limit: int) -> int:
        return max(1, min(self.size, settings.EFFECTS_CLAIM_BATCH, limit))

    def delivered(self, seconds: float) -> None:
        if seconds <= FAST_CLAIM_SECONDS:
            self.size = min(self.size * 2, settings.EFFECTS_CLAIM_BATCH)
        else:
            self.size = max(1, self.size // 2)


CLAIM_SIZE = ClaimSize()


def drain_once(*, limit: int = DRAIN_LIMIT) -> int:
    """Deliver due effects until none is left (or `limit`); return how many ran.

    Claims as many as `CLAIM_SIZE` says (up to EFFECTS_CLAIM_BATCH) and
    delivers them in order; once half a lease has passed since a claim, what
    is left of it is given back (`give_back`) and claimed again, so that no
    effect is started by a relay whose lease may run out before it is done.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock_shared(%s)", [DRAIN_LOCK])
        row = cursor.fetchone()
    if not (row and row[0]):
        return 0
    count = 0
    try:
        while count < limit:
            claimed = claim_many(CLAIM_SIZE.take(limit - count))
            if not claimed:
                break
            started = time.monotonic()
            count += deliver_claimed(claimed)
            CLAIM_SIZE.delivered(time.monotonic() - started)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock_shared(%s)", [DRAIN_LOCK])
    return count


def deliver_claimed(claimed: list[Effect]) -> int:
    """Deliver one claim's effects in order; return how many were started.

    The first is always started (as a claim of one); the others only while
    less than half of EFFECTS_LEASE_SECONDS has passed since the claim. What
    is not started is given back, also when a delivery raises (a worker
    shutting down), so that it does not wait for its lease to run out.
    """
    deadline = time.monotonic() + settings.EFFECTS_LEASE_SECONDS / 2
    rest: list[Effect] = []
    try:
        for index, effect in enumerate(claimed):
            if index and time.monotonic() >= deadline:
                rest = claimed[index:]
                return index
            rest = claimed[index + 1 :]
            deliver(effect)
        return len(claimed)
    finally:
        give_back(rest)


def relay_drain() -> int:
    """The effects relay's drain: deliver until none is due; 0 unless cut short.

    `drain_once` ends on a claim that came back empty, so whatever commits
    after it sends a notification the relay finds waiting: draining again
    at once would only claim nothing.
    """
    count = drain_once()
    return count if count >= DRAIN_LIMIT else 0


def deliver(effect: Effect) -> bool:
    """Perform one claimed effect; return True if it is done."""
    kind = outbox.KINDS[effect.kind]
    attributes = {
        "effect.id": effect.id,
        "effect.kind": effect.kind,
        "effect.attempt": effect.attempts,
        "effect.stream": effect.stream_id,
    }
    with tracing.span(
        f"effect.{effect.kind}",
        parent=effect.traceparent or None,
        attributes=attributes,
    ):
        try:
            kind.perform(effect, deciding_event(effect))
            if effect.status != EffectStatus.DONE:
                complete(effect)
        except LostLeaseError:
            logger.warning(
                "effect %s attempt %s was fenced off", effect.id, effect.attempts
            )
            metrics.effect_delivered(effect.kind, "fenced")
            return False
        except Exception as exc:
            logger.warning(
                "effect %s (%s) attempt %s failed: %r",
                effect.id,
                effect.kind,
                effect.attempts,
                exc,
                exc_info=not isinstance(exc, ConnectionError),
            )
            outcome = fail(effect, exc)
            if outcome == "fenced":  # another delivery took it over meanwhile
                logger.warning(
                    "effect %s attempt %s was fenced off", effect.id, effect.attempts
                )
            metrics.effect_delivered(effect.kind, outcome)
            return False
    metrics.effect_delivered(effect.kind, "done")
    return True


_COMPLETE_SQL = """
UPDATE effects SET status = 'done', done_at = now(), lease_expires_at = NULL,
    last_error = ''
FROM {alone}
WHERE id = %s AND attempts = %s AND status = 'pending'
RETURNING id
"""


def complete(effect: Effect) -> None:
    """Mark the effect done if this attempt still holds it; else LostLeaseError.

    Inside a transaction, the row stays locked until it commits: call it in the
    transaction that records the effect's outcome, so both commit or neither
    (a lost lease fails that transaction). Outside one, it is one statement
    that commits by itself (no BEGIN and COMMIT round trips), without waiting
    for the disk: a `done` lost in a crash costs one more delivery.
    """
    with transaction.mark_for_rollback_on_error():
        row = fetch_one(
            "default", repairable(_COMPLETE_SQL), [effect.id, effect.attempts]
        )
        if row is None:
            raise LostLeaseError(str(effect.id))
    effect.status = EffectStatus.DONE


_FAIL_SQL = """
UPDATE effects SET last_error = %s, lease_expires_at = NULL,
    due_at = now() + make_interval(secs => %s),
    status = CASE WHEN attempts - retried_at_attempt >= %s THEN 'parked'
        ELSE 'pending' END
WHERE id = %s AND attempts = %s AND status = 'pending'
RETURNING status
"""


def backoff(attempts: int) -> float:
    """Return the delay before the next attempt, doubling from the base."""
    base = settings.EFFECTS_BACKOFF_BASE_SECONDS
    return float(
        min(base * 2 ** max(attempts - 1, 0), settings.EFFECTS_BACKOFF_MAX_SECONDS)
    )


def fail(effect: Effect, exc: BaseException) -> str:
    """Record a failed attempt: retry later, or park; return the new status."""
    error = f"{type(exc).__name__}: {exc}"[:2000]
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                _FAIL_SQL,
                [
                    error,
                    backoff(effect.attempts),
                    settings.EFFECTS_MAX_ATTEMPTS,
                    effect.id,
                    effect.attempts,
                ],
            )
            row = cursor.fetchone()
    except Exception:  # the database may be why it failed: the lease will lapse
        logger.warning("could not record effect %s failing", effect.id, exc_info=True)
        return "failed"
    if row is None:
        return "fenced"
    effect.status = row[0]
    if row[0] == EffectStatus.PARKED:
        logger.error(
            "effect %s (%s) parked after %s attempts",
            effect.id,
            effect.kind,
            effect.attempts,
        )
        return "parked"
    return "failed"


def retry(effect_ids: Iterable[int]) -> int:
    """Put parked effects back to pending, due now (an operator's action).

    `attempts` keeps counting (it is the fence of every earlier attempt's
    relay); the retried effect gets a fresh budget of EFFECTS_MAX_ATTEMPTS.
    """
    with transaction.atomic():
        count = Effect.objects.filter(
            pk__in=list(effect_ids), status=EffectStatus.PARKED
        ).update(
            status=EffectStatus.PENDING,
            retried_at_attempt=F("attempts"),
            due_at=timezone.now(),
            lease_expires_at=None,
        )
        if count:
            notify()
    return count


def notify() -> None:
    """Wake the relays when the current transaction commits."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [outbox.CHANNEL])


_STATS_SQL = """
SELECT kind, status, count(*), extract(epoch FROM now() - min(created_at))
FROM effects WHERE status IN ('pending', 'parked') GROUP BY kind, status
"""


def stats() -> list[tuple[str, str, int, float]]:
    """Return (kind, status, count, age of the oldest in seconds) of open effects."""
    with connection.cursor() as cursor:
        cursor.execute(_STATS_SQL)
        return [(k, s, int(n), float(age or 0)) for k, s, n, age in cursor.fetchall()]


class EffectsCollector:
    """Report open effects per kind: pending, parked, and the oldest's age."""

    def collect(self) -> Iterator[Metric]:
        counts = GaugeMetricFamily(
            "cqrs_effects_open",
            "Effects not done yet, per kind and status (pending or parked).",
            labels=["kind", "status"],
        )
        oldest = GaugeMetricFamily(
            "cqrs_effects_oldest_pending_seconds",
            "Age of the oldest pending effect per kind (0: none).",
            labels=["kind"],
        )
        rows = {(kind, status): (n, age) for kind, status, n, age in stats()}
        for kind in sorted(set(outbox.KINDS) | {k for k, _ in rows}):
            for status in (EffectStatus.PENDING, EffectStatus.PARKED):
                counts.add_metric(
                    [kind, status], float(rows.get((kind, status), (0, 0))[0])
                )
            oldest.add_metric(
                [kind], rows.get((kind, EffectStatus.PENDING), (0, 0.0))[1]
            )
        yield counts
        yield oldest
