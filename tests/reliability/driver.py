"""Drive the private stack over HTTP: products, bursts of commands, waiting."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg
import requests

from tests.reliability.services import Stack
from tests.support.commands import ADDRESS, GOOD_CARD
from tests.support.processes import Worker, wait_until

FINAL = {"succeeded", "rejected", "failed"}


@dataclass
class Answer:
    status: int
    body: Any
    command_id: str | None = None
    who: str = ""


@dataclass
class Driver:
    """Send commands to the stack; remember every id that was answered 202."""

    stack: Stack
    accepted: set[str] = field(default_factory=set)
    answers: list[Answer] = field(default_factory=list)
    customers: itertools.cycle[str] = field(
        default_factory=lambda: itertools.cycle([f"customer{i}" for i in range(8)])
    )

    def send(
        self,
        who: str,
        name: str,
        body: dict[str, Any],
        timeout: float = 30,
        **headers: str,
    ) -> Answer:
        session = self.stack.session(who)
        try:
            response = session.post(
                f"{self.stack.url}/api/commands/{name}/",
                json=body,
                headers=headers,
                timeout=timeout,
            )
        except requests.RequestException as exc:
            answer = Answer(0, repr(exc), who=who)
        else:
            try:
                payload = response.json()
            except ValueError:
                payload = response.text
            answer = Answer(response.status_code, payload, who=who)
            if response.status_code in (200, 202):
                answer.command_id = payload["id"]
                self.accepted.add(payload["id"])
        self.answers.append(answer)
        return answer

    def status(self, who: str, command_id: str) -> dict[str, Any]:
        response = self.stack.session(who).get(
            f"{self.stack.url}/api/commands/{command_id}/", timeout=10
        )
        return dict(response.json())

    def final(self, who: str, command_id: str, timeout: float = 60) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            with contextlib.suppress(requests.RequestException, ValueError):
                body = self.status(who, command_id)
                return body if body.get("status") in FINAL else None
            return None

        return dict(wait_until(done, timeout=timeout, interval=0.1))

    def register_product(self, stock: int = 5, price: int = 1000) -> str:
        sku = f"SKU-{uuid.uuid4().hex[:10]}"
        answer = self.send(
            "staff",
            "register-product",
            {"sku": sku, "name": sku, "price_cents": price, "initial_stock": stock},
        )
        assert answer.status == 202, answer
        assert answer.command_id is not None
        status = self.final("staff", answer.command_id)
        assert status["status"] == "succeeded", status
        return str(status["aggregate_id"])

    def place_order(self, who: str, product_id: str, quantity: int = 1) -> Answer:
        return self.send(
            who,
            "place-order",
            {
                "lines": [{"product_id": product_id, "quantity": quantity}],
                "shipping_address": ADDRESS,
            },
        )

    def paid_order(self, who: str, product_id: str) -> tuple[str, Answer]:
        placed = self.place_order(who, product_id)
        assert placed.command_id is not None, placed
        status = self.final(who, placed.command_id)
        assert status["status"] == "succeeded", status
        order_id = str(status["aggregate_id"])
        return order_id, self.send(
            who, "pay-order", {"order_id": order_id, "card": GOOD_CARD}
        )

    def burst(
        self, product_ids: list[str], count: int, threads: int = 8
    ) -> list[Answer]:
        """Place `count` one-item orders at once, spread over customers and products."""
        jobs = [
            (next(self.customers), product_ids[i % len(product_ids)])
            for i in range(count)
        ]
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(lambda job: self.place_order(*job), jobs))

    def statuses(self) -> Counter[str]:
        with psycopg.connect(self.stack.dsn) as db:
            return Counter(
                {
                    row[0]: row[1]
                    for row in db.execute(
                        "SELECT status, count(*) FROM commands GROUP BY status"
                    )
                }
            )

    def command_row(self, command_id: str) -> dict[str, Any]:
        with psycopg.connect(self.stack.dsn) as db:
            cursor = db.execute(
                "SELECT status, attempt, progress, result, error FROM commands "
                "WHERE id = %s",
                [command_id],
            )
            row = cursor.fetchone()
            assert row is not None
            names = [c.name for c in cursor.description or []]
        return dict(zip(names, row, strict=True))

    @contextlib.contextmanager
    def killing_at_first_running(
        self, worker: Worker, command_type: str
    ) -> Iterator[threading.Event]:
        """Kill `worker` the moment a command of `command_type` runs; set the event.

        A command is `running` for a few milliseconds, and a worker can finish
        a burst of them before the burst's answers are all back: the watcher
        looks from before the first POST, every millisecond, on one connection.
        """
        killed, done = threading.Event(), threading.Event()

        def watch() -> None:
            with psycopg.connect(self.stack.dsn, autocommit=True) as db:
                while not done.is_set():
                    if db.execute(
                        "SELECT 1 FROM commands WHERE type = %s "
                        "AND status = 'running' LIMIT 1",
                        [command_type],
                    ).fetchone():
                        worker.kill()
                        killed.set()
                        return
                    time.sleep(0.001)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            yield killed
        finally:
            done.set()
            watcher.join(timeout=30)

    def wait_running(self, command_id: str, timeout: float = 20) -> None:
        wait_until(
            lambda: self.command_row(command_id)["status"] == "running",
            timeout=timeout,
            interval=0.02,
        )

    # --- Processes ------------------------------------------------------------------

    def replace_commands_worker(self, **env: str) -> Worker:
        """Stop the stack's command worker and start another with `env`."""
        if self.stack.commands is not None:
            self.stack.commands.stop()
        worker = Worker(
            queues="commands,imports",
            concurrency=int(env.pop("concurrency", "2")),
            log_dir=self.stack.log_dir,
            **{**self.stack.env, **env},
        ).start()
        self.stack.commands = worker
        self.stack.extra.append(worker)
        return worker

    def restore(self) -> None:
        """Leave the stack as a fresh one: its four processes up, services running."""
        stack = self.stack
        with contextlib.suppress(ProcessLookupError, AssertionError):
            stack.redis.resume()
        if not stack.redis.ping():
            stack.redis.restart()
        if not stack.pg.is_up():
            stack.pg.start()
        for process in stack.extra:
            with contextlib.suppress(Exception):
                process.stop()
        alive = (
            stack.commands is not None
            and stack.commands.process is not None
            and (stack.commands.process.poll() is None)
        )
        if not alive or stack.commands in stack.extra:
            stack.commands = Worker(
                queues="commands,imports",
                concurrency=2,
                log_dir=stack.log_dir,
                **stack.env,
            ).start()
        assert stack.projections is not None
        assert stack.projections.process is not None
        if stack.projections.process.poll() is not None:
            stack.projections = Worker(
                queues="projections", concurrency=1, log_dir=stack.log_dir, **stack.env
            ).start()
        stack.extra.clear()
