"""A command travels API → Celery worker process → event store → status."""

from __future__ import annotations

import pytest

from tests.support.commands import place_order, register_product

pytestmark = [
    pytest.mark.integration,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


def test_an_order_placed_through_the_api_succeeds_in_a_real_worker(
    worker, staff_api, alice_api
):
    product_id = register_product(staff_api, stock=3)
    status = place_order(alice_api, product_id, quantity=2)
    assert status["status"] == "succeeded"
    assert status["position"] is not None
