"""PostgreSQL stopped (fast, immediate) during a burst: 503 while down, never 500."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.reliability.driver import Driver
from tests.reliability.reconcile import reconcile
from tests.reliability.test_redis_faults import burst_during

pytestmark = [pytest.mark.e2e, pytest.mark.worker]


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_postgres_restart_mid_burst_answers_503_and_loses_no_command(
    driver: Driver, mode: str
) -> None:
    pg = driver.stack.pg
    down: list[tuple[int, Any]] = []

    def restart() -> None:
        pg.stop(mode)
        # Hit the web while the database is down (the burst goes on as well).
        for who in ("customer0", "staff"):
            refused = driver.place_order(who, "00000000-0000-4000-8000-000000000001")
            down.append((refused.status, refused.body))
            session = driver.stack.session(who)
            response = session.get(f"{driver.stack.url}/api/products/", timeout=10)
            down.append((response.status_code, response.json()))
        time.sleep(2)
        pg.start()

    answers = burst_during(driver, restart)
    for answer in answers:
        assert answer.status in (202, 503), answer
        if answer.status == 503:
            assert answer.body["code"] == "service_unavailable", answer
    for status, body in down:
        assert status == 503, body
        assert body["code"] == "service_unavailable", body
        assert set(body) == {"code", "message", "details"}
    reconcile(driver.stack, accepted=driver.accepted)
