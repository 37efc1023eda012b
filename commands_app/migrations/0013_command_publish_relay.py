"""The command row is the outbox: a flag for the relay that publishes it.

A column with a constant default is added without rewriting the table; the
partial index (empty at first) is built concurrently, so that accepting
commands is not held back meanwhile.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("commands_app", "0012_customer_keys_and_erasure")]

    operations = [
        migrations.AddField(
            model_name="commandrecord",
            name="publish_pending",
            field=models.BooleanField(
                db_default=False,
                default=False,
                help_text=(
                    "Accepted, and waiting for the command relay to publish its "
                    "task (the command row is the outbox)."
                ),
            ),
        ),
        AddIndexConcurrently(
            model_name="commandrecord",
            index=models.Index(
                condition=models.Q(("publish_pending", True)),
                fields=["created_at"],
                name="commands_publish_pending_idx",
            ),
        ),
    ]
