"""Create the demo users and a few products (through real commands); idempotent."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand

from commands_app import acceptance, execution
from commands_app.models import ProductSku
from commands_app.registry import REGISTER_PRODUCT

USERS = (
    ("admin", "admin-pass-123", True),
    ("alice", "alice-pass-123", False),
    ("bob", "bob-pass-123", False),
)
PRODUCTS = (
    ("MUG-001", "Stoneware mug", 1200, 25),
    ("TEE-001", "Organic cotton tee", 2500, 40),
    ("CAP-001", "Canvas cap", 1800, 15),
    ("BAG-001", "Tote bag", 900, 60),
    ("PEN-001", "Fountain pen", 4500, 5),
)


class Command(BaseCommand):
    help = "Create demo users (admin, alice, bob) and products; safe to run again."

    def handle(self, *args: Any, **options: Any) -> None:
        for username, password, staff in USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={"is_staff": staff, "is_superuser": staff},
            )
            if created:
                user.set_password(password)
                user.save()
            if not user.email:
                # Order e-mails go to the customer's address (notifications.py).
                user.email = f"{username}@example.com"
                user.save(update_fields=["email"])
        admin = User.objects.get(username="admin")
        spec = REGISTER_PRODUCT
        for sku, name, price, stock in PRODUCTS:
            if ProductSku.objects.filter(sku=sku).exists():
                continue
            payload = {
                "product_id": acceptance.new_id(),
                "sku": sku,
                "name": name,
                "price_cents": price,
                "initial_stock": stock,
            }
            record, _ = acceptance.submit(
                spec,
                user_id=admin.pk,
                payload=payload,
                aggregate_id=UUID(str(payload["product_id"])),
                idempotency_key=f"seed-{sku}",
                body_hash=acceptance.request_hash(spec.name, payload),
            )
            execution.execute(record.id)
        self.stdout.write("Demo users (development only):")
        for username, password, staff in USERS:
            role = "staff" if staff else "customer"
            self.stdout.write(f"  {username:<6} / {password:<15} ({role})")
        self.stdout.write(f"Products: {ProductSku.objects.count()} registered.")
