"""Make the event store append-only: the database refuses UPDATE and DELETE."""

from django.db import migrations

SQL = """
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event store is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
"""

REVERSE = """
DROP TRIGGER IF EXISTS events_append_only ON events;
DROP FUNCTION IF EXISTS events_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("commands_app", "0001_initial")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
