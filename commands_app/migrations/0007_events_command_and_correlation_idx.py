from django.db import migrations, models
from django.db.models.fields.json import KT


class Migration(migrations.Migration):
    """Index the events by the command and the request that wrote them (admin)."""

    dependencies = [
        ("commands_app", "0006_pay_order_hash_without_card"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="storedevent",
            index=models.Index(KT("metadata__command_id"), name="events_command_idx"),
        ),
        migrations.AddIndex(
            model_name="storedevent",
            index=models.Index(
                KT("metadata__correlation_id"), name="events_correlation_idx"
            ),
        ),
    ]
