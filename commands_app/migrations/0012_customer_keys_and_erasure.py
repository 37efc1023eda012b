"""Customers' data keys, and the one exception to the append-only event store.

Erasing a customer rewrites the personal fields of their events that were
stored in clear before personal data was encrypted (docs/operations.md,
"Forgetting a customer"). The trigger lets an UPDATE through only when the
transaction set `cqrs.erase_personal_data` to `on` (SET LOCAL, done by
commands_app/pii.py alone) and only `data` changes; DELETE stays refused.
"""

from django.db import migrations, models
from django.db.models.functions import Now

SQL = """
CREATE OR REPLACE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
        AND current_setting('cqrs.erase_personal_data', true) = 'on'
        AND NEW.position = OLD.position AND NEW.tx_id = OLD.tx_id
        AND NEW.stream_id = OLD.stream_id AND NEW.version = OLD.version
        AND NEW.type = OLD.type AND NEW.metadata = OLD.metadata
        AND NEW.recorded_at = OLD.recorded_at THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the event store is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
"""

REVERSE = """
CREATE OR REPLACE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event store is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("commands_app", "0011_stream_snapshot_history")]
    operations = [
        migrations.CreateModel(
            name="CustomerKey",
            fields=[
                ("customer_id", models.BigIntegerField(primary_key=True, serialize=False)),
                (
                    "master_key_id",
                    models.CharField(
                        blank=True,
                        default="",
                        help_text="Fingerprint of the master key that wraps it (rotation).",
                        max_length=16,
                    ),
                ),
                ("wrapped_key", models.BinaryField(blank=True, editable=False, null=True)),
                ("created_at", models.DateTimeField(db_default=Now(), editable=False)),
                ("forgotten_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={"db_table": "customer_keys"},
        ),
        migrations.RunSQL(SQL, REVERSE),
    ]
