"""reconcile(): the invariants of DESIGN.md, checked after a fault.

It reads the databases of the stack it is given through plain psycopg
connections (never the pytest-django ones), waits a bounded time for the
sweeper (beat) and the projections to settle, then checks:

- every command that got a 202 exists; none is left accepted or running;
- events exist exactly for succeeded commands, once per command;
- stream versions are gapless (1..n);
- every projection's checkpoint reached the head, no dead letter is open, and a
  rebuild equals the live rows (`manage.py verify_projections`);
- stock never went negative (product events folded in version order);
- money: no effect left pending or parked; per order, what the (simulated)
  gateway's ledger captured minus refunded equals what the events say; never
  two captures for one order; never a capture without its PaymentCaptured;
- no test card number appears in database dumps, Redis keys and values
  (Celery messages decoded), process logs, or admin pages.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
import requests

from commands_app.reconciliation import LEDGER_SQL, check_money
from projections.registry import projector_names
from tests.reliability.services import PG_BIN, Stack

TEST_CARDS = ("4242424242424242", "4000000000000002")
SETTLE_SECONDS = 60.0


# The rows the store checks read: commands (id, then type, status, position,
# payload) and events in position order.
COMMANDS_SQL = "SELECT id, type, status, position, payload FROM commands"
EVENTS_SQL = (
    "SELECT position, tx_id::text::bigint, stream_id, version, type, "
    "data, metadata FROM events ORDER BY position"
)


OPEN_EFFECTS_SQL = (
    "SELECT id, kind, stream_id, status, attempts, last_error FROM effects "
    "WHERE status <> 'done' ORDER BY id"
)


class ReconcileError(AssertionError):
    """Raise with every broken invariant at once."""


def reconcile(
    stack: Stack,
    *,
    accepted: Iterable[str] = (),
    cards: Iterable[str] = TEST_CARDS,
    settle_seconds: float = SETTLE_SECONDS,
) -> dict[str, int]:
    """Check every invariant; return a few counts for the report."""
    accepted = set(accepted)
    problems: list[str] = []
    wait_for_commands(stack, settle_seconds, problems)
    wait_for_effects(stack.dsn, settle_seconds)
    with psycopg.connect(stack.dsn) as db:
        commands = {str(row[0]): row[1:] for row in db.execute(COMMANDS_SQL)}
        events = list(db.execute(EVENTS_SQL))
        ledger = list(db.execute(LEDGER_SQL))
        open_effects = list(db.execute(OPEN_EFFECTS_SQL))
    missing = accepted - set(commands)
    if missing:
        problems.append(f"{len(missing)} commands answered 202 are missing: {missing}")
    open_ = [cid for cid, row in commands.items() if row[1] in ("accepted", "running")]
    if open_:
        problems.append(f"{len(open_)} commands still open: {open_[:5]}")
    check_store(commands, events, stack.foreign_positions, problems)
    if open_effects:
        problems.append(f"effects not done: {open_effects[:5]}")
    check_money(events, ledger, problems)
    if events:
        wait_for_projections(stack, events, settle_seconds, problems)
        check_rebuild_equals_live(stack, problems)
    check_secrets(stack, list(cards), problems)
    if problems:
        raise ReconcileError("\n".join(problems))
    return {"commands": len(commands), "events": len(events)}


def wait_for_commands(stack: Stack, seconds: float, problems: list[str]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with psycopg.connect(stack.dsn) as db:
            row = db.execute(
                "SELECT count(*) FROM commands WHERE status IN ('accepted', 'running')"
            ).fetchone()
        if row is not None and row[0] == 0:
            return
        time.sleep(0.25)


def wait_for_effects(dsn: str, seconds: float) -> None:
    """Wait until no effect is pending (parked ones are reported, not awaited)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with psycopg.connect(dsn) as db:
            row = db.execute(
                "SELECT count(*) FROM effects WHERE status = 'pending'"
            ).fetchone()
        if row is not None and row[0] == 0:
            return
        time.sleep(0.1)


def check_store(
    commands: dict[str, tuple[Any, ...]],
    events: list[tuple[Any, ...]],
    foreign: set[int],
    problems: list[str],
) -> None:
    """Check events against commands, stream versions and stock."""
    check_events(commands, events, foreign, problems)
    check_versions(events, problems)
    check_stock(events, problems)


def check_events(
    commands: dict[str, tuple[Any, ...]],
    events: list[tuple[Any, ...]],
    foreign: set[int],
    problems: list[str],
) -> None:
    """Events exist exactly for succeeded commands, appended once each."""
    by_command: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    # Events an effect appended (a payment's outcome) in a later transaction.
    followed: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for event in events:
        command_id = event[6].get("command_id")
        if command_id is None:
            if event[0] not in foreign:
                problems.append(f"event {event[0]} names no command")
            continue
        if "effect_id" in event[6]:
            followed[command_id].append(event)
            continue
        by_command[command_id].append(event)
    for command_id, appended in by_command.items():
        row = commands.get(command_id)
        if row is None:
            problems.append(f"events of unknown command {command_id}")
            continue
        kind, status, position = row[0], row[1], row[2]
        declined = kind == "pay-order" and status in ("rejected", "running")
        if status != "succeeded" and not declined:
            problems.append(f"{kind} {command_id} is {status} but has events")
        if kind != "import-products" and len({e[1] for e in appended}) != 1:
            problems.append(f"{kind} {command_id} appended in several transactions")
        # A pay-order's charge finishes it: its position is its outcome's.
        finisher = followed[command_id] if kind == "pay-order" else []
        last = max(e[0] for e in appended + finisher)
        if status != "running" and position != last:
            problems.append(f"{command_id}: position {position} is not its last event")
        per_stream = count_by(appended)
        if any(count > 1 for count in per_stream.values()):
            problems.append(f"{command_id} appended one event twice: {per_stream}")
    for command_id, row in commands.items():
        kind, status, position = row[0], row[1], row[2]
        expects_events = kind != "import-products" or position is not None
        if status == "succeeded" and expects_events and command_id not in by_command:
            problems.append(f"succeeded {kind} {command_id} has no events")
    registered = count_by(
        [e for e in events if e[4] == "product.registered.v1"],
        key=lambda e: e[5]["sku"],
    )
    twice = [sku for sku, count in registered.items() if count > 1]
    if twice:
        problems.append(f"SKUs registered twice: {twice[:5]}")


def count_by(events: list[tuple[Any, ...]], key: Any = None) -> dict[Any, int]:
    counts: dict[Any, int] = defaultdict(int)
    for event in events:
        counts[key(event) if key else (event[2], event[4], json.dumps(event[5]))] += 1
    return counts


def check_versions(events: list[tuple[Any, ...]], problems: list[str]) -> None:
    versions: dict[str, list[int]] = defaultdict(list)
    for event in events:
        versions[event[2]].append(event[3])
    for stream, seen in versions.items():
        if sorted(seen) != list(range(1, len(seen) + 1)):
            problems.append(f"stream {stream} has versions {sorted(seen)[:20]}")


def check_stock(events: list[tuple[Any, ...]], problems: list[str]) -> None:
    """Fold each product's events in version order; stock never goes below zero."""
    moves = {
        "product.registered.v1": lambda d: d["initial_stock"],
        "product.restocked.v1": lambda d: d["quantity"],
        "product.stock_reserved.v1": lambda d: -d["quantity"],
        "product.stock_released.v1": lambda d: d["quantity"],
    }
    stock: dict[str, int] = defaultdict(int)
    for event in sorted(events, key=lambda e: (e[2], e[3])):
        move = moves.get(event[4])
        if move is None:
            continue
        stock[event[2]] += move(event[5])
        if stock[event[2]] < 0:
            problems.append(f"{event[2]} went to {stock[event[2]]} at v{event[3]}")


def head(events: list[tuple[Any, ...]]) -> tuple[int, int]:
    return max((e[1], e[0]) for e in events)


def wait_for_projections(
    stack: Stack, events: list[tuple[Any, ...]], seconds: float, problems: list[str]
) -> None:
    target = head(events)
    names = set(projector_names())
    deadline = time.monotonic() + seconds
    behind: dict[str, tuple[int, int]] = {}
    while time.monotonic() < deadline:
        with psycopg.connect(stack.read_dsn) as read:
            rows = {
                name: (tx, pos)
                for name, tx, pos in read.execute(
                    "SELECT name, tx_id, position FROM read_checkpoints"
                )
            }
        behind = {n: rows.get(n, (0, 0)) for n in names if rows.get(n, (0, 0)) < target}
        if not behind:
            break
        time.sleep(0.25)
    if behind:
        problems.append(f"projections behind the head {target}: {behind}")
    with psycopg.connect(stack.read_dsn) as read:
        open_letters = read.execute(
            "SELECT projection, position, status FROM read_dead_letters "
            "WHERE status IN ('parked', 'waiting')"
        ).fetchall()
    if open_letters:
        problems.append(f"open dead letters: {open_letters[:5]}")


def check_rebuild_equals_live(stack: Stack, problems: list[str]) -> None:
    try:
        stack.manage("verify_projections")
    except AssertionError as exc:
        problems.append(f"a rebuild differs from the live read models: {exc}")


# --- Secrets ------------------------------------------------------------------------


def check_secrets(stack: Stack, cards: list[str], problems: list[str]) -> None:
    for where, blob in places(stack):
        for card in cards:
            if card.encode() in blob:
                problems.append(f"card number {card[:4]}… found in {where}")


def places(stack: Stack) -> Iterator[tuple[str, bytes]]:
    """Yield (where, bytes) for everything a card number must never reach."""
    for url in (stack.dsn, stack.read_dsn):
        dump = subprocess.run(
            [str(PG_BIN / "pg_dump"), "--data-only", url],
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout
        yield f"pg_dump {url.rsplit('/', 1)[-1]}", dump
    yield from redis_contents(stack)
    for path in stack.log_files():
        yield f"log {path.name}", path.read_bytes()
    yield from admin_pages(stack)


def redis_contents(stack: Stack) -> Iterator[tuple[str, bytes]]:
    client: Any = stack.redis.client()
    for db in range(16):
        client.execute_command("SELECT", db)
        for key in client.scan_iter(count=500):
            kind = client.type(key).decode()
            values: list[Any] = [key]
            if kind == "string":
                values.append(client.get(key) or b"")
            elif kind == "list":
                values += client.lrange(key, 0, -1)
            elif kind == "hash":
                for field_, value in client.hgetall(key).items():
                    values += [field_, value]
            elif kind == "set":
                values += list(client.smembers(key))
            elif kind == "zset":
                values += client.zrange(key, 0, -1)
            elif kind == "stream":
                for _id, fields in client.xrange(key):
                    for field_, value in fields.items():
                        values += [field_, value]
            for value in values:
                yield f"redis db{db} {key!r}", b"\n".join(decoded(value))
    client.execute_command("SELECT", 0)


def decoded(value: bytes) -> Iterator[bytes]:
    """Yield a value and, for a Celery message, its base64 body decoded."""
    yield value
    try:
        message = json.loads(value)
    except ValueError:
        return
    for body in find_bodies(message):
        try:
            yield base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            yield body.encode()


def find_bodies(message: Any) -> Iterator[str]:
    if isinstance(message, dict):
        for key, value in message.items():
            if key == "body" and isinstance(value, str):
                yield value
            else:
                yield from find_bodies(value)
    elif isinstance(message, list):
        for item in message:
            yield from find_bodies(item)


def admin_pages(stack: Stack) -> Iterator[tuple[str, bytes]]:
    """Render the command and event admin pages with a staff session."""
    session = admin_session(stack)
    with psycopg.connect(stack.dsn) as db:
        commands = [
            str(row[0])
            for row in db.execute(
                "SELECT id FROM commands WHERE type = 'pay-order' "
                "ORDER BY created_at DESC LIMIT 10"
            )
        ]
        positions = [
            row[0]
            for row in db.execute(
                "SELECT position FROM events WHERE type = 'order.paid.v1' "
                "ORDER BY position DESC LIMIT 10"
            )
        ]
    urls = [
        "/admin/commands_app/commandrecord/",
        "/admin/commands_app/commandrecord/?type=pay-order",
        "/admin/commands_app/storedevent/",
        *(f"/admin/commands_app/commandrecord/{cid}/change/" for cid in commands),
        *(f"/admin/commands_app/storedevent/{pos}/change/" for pos in positions),
    ]
    for url in urls:
        response = session.get(stack.url + url, timeout=30)
        if response.status_code != 200:
            raise ReconcileError(f"admin page {url} answered {response.status_code}")
        yield f"admin {url}", response.content


def admin_session(stack: Stack) -> requests.Session:
    session = requests.Session()
    login = f"{stack.url}/admin/login/"
    session.get(login, timeout=10)
    response = session.post(
        login,
        data={
            "username": "staff",
            "password": "staff-pass-123",
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
        headers={"Referer": login},
        timeout=10,
    )
    if "sessionid" not in session.cookies or re.search(
        rb'name="password"', response.content
    ):
        raise ReconcileError("could not sign in to the admin as staff")
    return session
