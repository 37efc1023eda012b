"""import-products: a long-running command, committed in chunks and resumable.

Each chunk registers its products, records progress and extends the lease in one
transaction, fenced by the claim's attempt number. A crashed import resumes at
the first uncommitted chunk; product ids are derived from the command id and the
item's index, so a resumed chunk decides exactly as the first try would have.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from . import eventstore, execution
from .domain.product import Product
from .eventstore import NewEvents
from .models import CommandRecord, CommandStatus
from .push import status as status_push


def run_import(record: CommandRecord, attempt: int) -> None:
    items: list[dict[str, Any]] = record.payload["products"]
    state = dict(record.result or {"next": 0, "imported": 0, "skipped": 0})
    chunk_size = settings.IMPORT_CHUNK_SIZE
    last_position = record.position
    try:
        while state["next"] < len(items):
            start = state["next"]
            chunk = items[start : start + chunk_size]
            with transaction.atomic():
                execution.hold_claim(record.id, attempt)
                positions, imported = _import_chunk(record, start, chunk)
                last_position = max(positions, default=last_position)
                state = {
                    "next": start + len(chunk),
                    "imported": state["imported"] + imported,
                    "skipped": state["skipped"] + len(chunk) - imported,
                }
                record.progress = min(99, state["next"] * 100 // len(items))
                record.result = state
                record.position = last_position
                record.status_seq += 1
                CommandRecord.objects.filter(pk=record.pk).update(
                    progress=record.progress,
                    result=state,
                    position=last_position,
                    status_seq=record.status_seq,
                )
                execution.extend_lease(record.id, attempt)
                transaction.on_commit(lambda: status_push.after_commit(record))
        with transaction.atomic():
            execution.finish(
                record,
                attempt,
                status=CommandStatus.SUCCEEDED,
                result={"imported": state["imported"], "skipped": state["skipped"]},
                position=last_position,
            )
    except execution.LostClaimError:
        return
    except Exception:
        execution.release(record.id, attempt)
        raise


def _import_chunk(
    record: CommandRecord, start: int, chunk: list[dict[str, Any]]
) -> tuple[list[int], int]:
    """Register the chunk's new SKUs; return event positions and how many."""
    ids = {
        item["sku"]: uuid.uuid5(record.id, str(start + index))
        for index, item in enumerate(chunk)
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO product_skus (sku, product_id) "
            "SELECT * FROM unnest(%s::text[], %s::uuid[]) "
            "ON CONFLICT DO NOTHING RETURNING sku",
            [list(ids), list(ids.values())],
        )
        new = {row[0] for row in cursor.fetchall()}
    batches = []
    seen: set[str] = set()
    for item in chunk:
        if item["sku"] not in new or item["sku"] in seen:
            continue
        seen.add(item["sku"])
        product = Product.register(
            product_id=ids[item["sku"]],
            sku=item["sku"],
            name=item["name"],
            price_cents=item["price_cents"],
            initial_stock=item["initial_stock"],
        )
        batches.append(NewEvents(product.stream, 0, tuple(product.pending_events)))
    positions = eventstore.append(batches, metadata=execution.event_metadata(record))
    return positions, len(batches)
