"""Mixed customers and staff against the real server (run by test_load.py).

Reads LOAD_TOKENS (JSON {"staff": token, "customers": [token, ...]}) and
LOAD_PRODUCTS (JSON list of product ids) from the environment.
"""

from __future__ import annotations

import json
import os
import random
import uuid

from locust import HttpUser, between, task

TOKENS = json.loads(os.environ.get("LOAD_TOKENS", "{}"))
PRODUCTS = json.loads(os.environ.get("LOAD_PRODUCTS", "[]"))
ADDRESS = {
    "name": "Load",
    "line1": "1 rue",
    "city": "Paris",
    "postal_code": "75001",
    "country": "FR",
}
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}


class Customer(HttpUser):
    weight = 4
    wait_time = between(0.05, 0.3)

    def on_start(self) -> None:
        token = random.choice(TOKENS["customers"])
        self.client.headers["Authorization"] = f"Token {token}"
        self.orders: list[str] = []

    @task(4)
    def place_order(self) -> None:
        body = {
            "lines": [{"product_id": random.choice(PRODUCTS), "quantity": 1}],
            "shipping_address": ADDRESS,
        }
        with self.client.post(
            "/api/commands/place-order/",
            json=body,
            name="place-order",
            catch_response=True,
        ) as response:
            if response.status_code == 202:
                self.orders.append(response.json()["aggregate_id"])
                response.success()
            else:
                response.failure(f"{response.status_code}")

    @task(2)
    def pay_order(self) -> None:
        if not self.orders:
            return
        body = {"order_id": self.orders.pop(0), "card": CARD}
        self.client.post(
            "/api/commands/pay-order/",
            json=body,
            name="pay-order",
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )

    @task(3)
    def browse(self) -> None:
        self.client.get("/api/products/?ordering=name", name="products")

    @task(2)
    def my_orders(self) -> None:
        self.client.get("/api/orders/", name="orders")


class Staff(HttpUser):
    weight = 1
    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Token {TOKENS['staff']}"

    @task(2)
    def restock(self) -> None:
        body = {"product_id": random.choice(PRODUCTS), "quantity": 2}
        self.client.post("/api/commands/restock-product/", json=body, name="restock")

    @task(1)
    def register(self) -> None:
        sku = f"L-{uuid.uuid4().hex[:10]}"
        body = {"sku": sku, "name": sku, "price_cents": 100, "initial_stock": 3}
        self.client.post("/api/commands/register-product/", json=body, name="register")

    @task(2)
    def stats(self) -> None:
        self.client.get("/api/stats/sales/", name="sales")
