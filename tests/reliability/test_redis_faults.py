"""Redis restarted, flushed or stalled during bursts: PostgreSQL keeps every command."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest

from tests.reliability.driver import Answer, Driver
from tests.reliability.reconcile import reconcile
from tests.reliability.services import PrivateRedis

pytestmark = [pytest.mark.e2e, pytest.mark.worker]


def burst_during(
    driver: Driver, fault: Callable[[], None], seconds: float = 4.0
) -> list[Answer]:
    """Run `fault` while orders against scarce stock arrive for `seconds`."""
    products = [driver.register_product(stock=6) for _ in range(2)]
    answers: list[Answer] = []
    stop = time.monotonic() + seconds

    def send() -> None:
        while time.monotonic() < stop:
            answers.extend(driver.burst(products, 2, threads=2))
            time.sleep(0.05)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    fault()
    for thread in threads:
        thread.join(timeout=90)
        assert not thread.is_alive()
    print(Counter(answer.status for answer in answers))
    return answers


def assert_no_server_error(answers: list[Answer]) -> None:
    for answer in answers:
        assert answer.status in (202, 503), answer
        if answer.status == 503:
            assert answer.body["code"] == "service_unavailable", answer


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(lambda r: r.restart(down_seconds=1.0), id="restart-losing-all"),
        pytest.param(lambda r: r.client().flushall(), id="flushall"),
    ],
)
def test_a_redis_that_loses_the_queue_mid_burst_loses_no_command(
    driver: Driver, fault: Callable[[PrivateRedis], None]
) -> None:
    answers = burst_during(driver, lambda: fault(driver.stack.redis))
    assert_no_server_error(answers)
    reconcile(driver.stack, accepted=driver.accepted)
    assert driver.statuses()["succeeded"] >= 8


def test_a_stalled_redis_delays_commands_but_loses_none(driver: Driver) -> None:
    def stall() -> None:
        driver.stack.redis.pause()
        time.sleep(3)
        driver.stack.redis.resume()

    answers = burst_during(driver, stall)
    assert_no_server_error(answers)
    reconcile(driver.stack, accepted=driver.accepted)
