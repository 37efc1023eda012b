"""Re-hash stored pay-order bodies without their card secrets.

Before this migration a pay-order's `request_hash` was an HMAC over the raw
body, card number and CVC included: with the database and the secret key, the
number could be recovered by trying candidates. The stored payload still holds
what the new hash covers (the order id and the card's last four digits), so
each hash is recomputed from it; a payload without them gets the hash of the
order id alone, which can only make a same-key retry answer 422.
"""

import hashlib
import hmac
import json

from django.conf import settings
from django.db import migrations


def rehash(apps, schema_editor):
    CommandRecord = apps.get_model("commands_app", "CommandRecord")
    key = settings.SECRET_KEY.encode()
    rows = CommandRecord.objects.filter(type="pay-order").only("payload")
    for record in rows.iterator(chunk_size=1000):
        payload = record.payload or {}
        card = payload.get("card") or {}
        body = {
            "order_id": payload.get("order_id"),
            "card": {"last4": str(card.get("last4", ""))},
        }
        canonical = json.dumps(
            ["pay-order", body], sort_keys=True, separators=(",", ":")
        )
        digest = hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()
        CommandRecord.objects.filter(pk=record.pk).update(request_hash=digest)


class Migration(migrations.Migration):
    dependencies = [
        ("commands_app", "0005_gateway_ledger_and_effects"),
    ]

    operations = [
        migrations.RunPython(rehash, migrations.RunPython.noop, elidable=True),
    ]
