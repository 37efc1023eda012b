"""A bounded Locust run of mixed customers and staff, then reconcile()."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.reliability.driver import Driver
from tests.reliability.reconcile import reconcile
from tests.support.processes import BIN, ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.worker]

DURATION = os.environ.get("LOAD_DURATION", "20s")


def test_a_bounded_mixed_load_answers_no_5xx_and_reconciles(driver: Driver) -> None:
    stack = driver.stack
    products = [driver.register_product(stock=40) for _ in range(4)]
    tokens = {
        "staff": stack.tokens["staff"],
        "customers": [stack.tokens[f"customer{i}"] for i in range(8)],
    }
    prefix = stack.log_dir / "locust"
    env = dict(os.environ)
    env.update(LOAD_TOKENS=json.dumps(tokens), LOAD_PRODUCTS=json.dumps(products))
    run = subprocess.run(
        [
            str(BIN / "locust"),
            "-f",
            str(Path(__file__).with_name("locustfile.py")),
            "--headless",
            "-u",
            "12",
            "-r",
            "6",
            "-t",
            DURATION,
            "--host",
            stack.url,
            "--csv",
            str(prefix),
            "--only-summary",
            "--stop-timeout",
            "5",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    rows = list(csv.DictReader(open(f"{prefix}_stats.csv")))  # noqa: SIM115
    total = next(row for row in rows if row["Name"] == "Aggregated")
    print(
        json.dumps(
            {
                k: total[k]
                for k in (
                    "Request Count",
                    "Failure Count",
                    "Median Response Time",
                    "95%",
                    "99%",
                    "Requests/s",
                )
            }
        )
    )
    failures = list(csv.DictReader(open(f"{prefix}_failures.csv")))  # noqa: SIM115
    assert not [f for f in failures if f["Error"].startswith(("5", "Server"))], failures
    assert int(total["Request Count"]) > 100, run.stdout + run.stderr
    with psycopg.connect(stack.dsn) as db:
        ids = {str(r[0]) for r in db.execute("SELECT id FROM commands")}
    reconcile(stack, accepted=driver.accepted | ids)
