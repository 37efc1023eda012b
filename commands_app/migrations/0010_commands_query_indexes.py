"""Index what the periodic queries on `commands` look for.

Built concurrently: the table grows with every command, and a plain CREATE
INDEX would hold back accepting commands for as long as it runs.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("commands_app", "0009_command_redrive_base")]

    operations = [
        AddIndexConcurrently(
            model_name="commandrecord",
            index=models.Index(
                condition=models.Q(position__isnull=False),
                fields=["position"],
                name="commands_position_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="commandrecord",
            index=models.Index(fields=["created_at"], name="commands_created_idx"),
        ),
        AddIndexConcurrently(
            model_name="commandrecord",
            index=models.Index(
                condition=models.Q(finished_at__isnull=False),
                fields=["finished_at"],
                name="commands_finished_idx",
            ),
        ),
    ]
