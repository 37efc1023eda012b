"""End to end with a real worker: a command's status turns `projected` by itself."""

from __future__ import annotations

import statistics
import time

import pytest

from projections.models import OrderSummary, ProductCatalogue
from tests.support.commands import place_order, register_product
from tests.support.processes import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


def wait_projected(client, command_id: str) -> float:
    """Poll the status until `projected`; return the seconds it took."""
    started = time.monotonic()

    def projected() -> bool:
        body = client.get(f"/api/commands/{command_id}/").json()
        return bool(body["projected"])

    wait_until(projected, timeout=20, interval=0.01)
    return time.monotonic() - started


def test_a_command_becomes_projected_after_the_wake_up(
    worker, staff_api, alice_api, output_dir
):
    product_id = register_product(staff_api, stock=50)
    lags = []
    for _ in range(10):
        status = place_order(alice_api, product_id, quantity=1)
        assert status["status"] == "succeeded"
        lags.append(wait_projected(alice_api, status["id"]))

    assert OrderSummary.objects.filter(id=status["aggregate_id"]).exists()
    assert ProductCatalogue.objects.get(id=product_id).available == 40
    (output_dir / "projection-lag.txt").write_text(
        "seconds from `succeeded` seen to `projected` seen (10 orders, at rest): "
        f"median {statistics.median(lags):.3f}, max {max(lags):.3f}\n"
    )
    # Without beat in tests, only the wake-up can have done it, well within 2 s.
    assert max(lags) < 2.0, lags
