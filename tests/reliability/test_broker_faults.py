"""RabbitMQ restarted during a burst: durable queues and the sweeper keep every command.

Runs in `make test`'s RabbitMQ pass (CELERY_BROKER_URL=amqp://...). The Redis
broker's restart is test_redis_faults.py's restart-losing-all case. Restarting
the shared server drops every client's connections for a few seconds, so this
is the one test that does it.
"""

from __future__ import annotations

import os

import pytest

from tests.reliability.driver import Driver
from tests.reliability.reconcile import reconcile
from tests.reliability.test_redis_faults import assert_no_server_error, burst_during
from tests.support import rabbitmq

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.skipif(
        not rabbitmq.is_rabbitmq(os.environ.get("CELERY_BROKER_URL", "")),
        reason="RabbitMQ is not the broker of this run",
    ),
]


def test_a_rabbitmq_restart_mid_burst_loses_no_command(driver: Driver) -> None:
    answers = burst_during(driver, rabbitmq.restart_app)
    assert_no_server_error(answers)
    reconcile(driver.stack, accepted=driver.accepted)
    assert driver.statuses()["succeeded"] >= 8
