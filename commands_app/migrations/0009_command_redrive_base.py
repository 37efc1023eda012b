from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("commands_app", "0008_events_refuse_truncate")]

    operations = [
        migrations.AddField(
            model_name="commandrecord",
            name="redriven_at_attempt",
            field=models.PositiveIntegerField(
                db_default=0,
                default=0,
                help_text=(
                    "The attempt number when staff last re-drove it: attempts only "
                    "go up (they fence stale workers), COMMAND_MAX_ATTEMPTS counts "
                    "from here."
                ),
            ),
        ),
    ]
