"""import-products commits in chunks and resumes after a crash, registering once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from commands_app import execution, imports
from commands_app.models import CommandRecord, ProductSku, StoredEvent

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


class Crash(BaseException):
    """Stand in for a process dying: nothing in the import may catch it."""


SKUS = ["A-1", "A-2", "OLD-1", "A-3", "A-1", "A-4", "A-5", "A-6", "A-7", "A-8"]


def import_command(user) -> CommandRecord:
    items = [
        {"sku": sku, "name": sku, "price_cents": 10, "initial_stock": 2} for sku in SKUS
    ]
    return CommandRecord.objects.create(
        type="import-products",
        user=user,
        payload={"products": items},
        request_hash="-",
    )


def registered_skus() -> Counter[str]:
    return Counter(
        e.data["sku"] for e in StoredEvent.objects.filter(type="product.registered.v1")
    )


def test_an_import_that_crashed_resumes_and_registers_each_product_once(
    staff, settings, monkeypatch
):
    settings.IMPORT_CHUNK_SIZE = 3
    ProductSku.objects.create(
        sku="OLD-1", product_id="00000000-0000-4000-8000-0000000000aa"
    )
    record = import_command(staff)
    chunks = []
    real_chunk = imports._import_chunk

    def dying_on_the_third_chunk(*args):
        chunks.append(args[1])
        if len(chunks) == 3:
            real_chunk(*args)  # its writes roll back with the dying transaction
            raise Crash
        return real_chunk(*args)

    monkeypatch.setattr(imports, "_import_chunk", dying_on_the_third_chunk)
    attempt = execution.claim(record.id)
    assert attempt is not None
    with pytest.raises(Crash):
        imports.run_import(CommandRecord.objects.get(pk=record.id), attempt)
    record.refresh_from_db()
    assert record.status == "running"
    assert record.result == {"next": 6, "imported": 4, "skipped": 2}
    assert record.progress == 60
    assert registered_skus() == Counter(["A-1", "A-2", "A-3", "A-4"])

    monkeypatch.setattr(imports, "_import_chunk", real_chunk)
    CommandRecord.objects.filter(pk=record.id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    execution.execute(record.id)
    record.refresh_from_db()
    assert record.status == "succeeded"
    assert record.attempt == 2
    assert record.progress == 100
    assert record.result == {"imported": 8, "skipped": 2}
    expected = {"A-1", "A-2", "A-3", "A-4", "A-5", "A-6", "A-7", "A-8"}
    assert registered_skus() == Counter(expected)
    assert set(ProductSku.objects.values_list("sku", flat=True)) == expected | {"OLD-1"}
    assert record.position == StoredEvent.objects.latest("position").position


def test_an_import_fenced_off_mid_way_stops_without_writing(staff, settings):
    settings.IMPORT_CHUNK_SIZE = 3
    record = import_command(staff)
    stale = execution.claim(record.id)
    assert stale == 1
    CommandRecord.objects.filter(pk=record.id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert execution.claim(record.id) == 2
    imports.run_import(CommandRecord.objects.get(pk=record.id), stale)
    assert StoredEvent.objects.count() == 0
    assert CommandRecord.objects.get(pk=record.id).status == "running"
