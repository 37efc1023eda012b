"""Refuse TRUNCATE on the event store too (the row trigger never sees it).

A session may allow it by setting `cqrs.allow_truncate_events` to `on`: the
test suite's flush between tests and the bench's reset do, nothing else.
"""

from django.db import migrations

SQL = """
CREATE FUNCTION events_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('cqrs.allow_truncate_events', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the event store is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER events_refuse_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_truncate();
"""

REVERSE = """
DROP TRIGGER IF EXISTS events_refuse_truncate ON events;
DROP FUNCTION IF EXISTS events_refuse_truncate();
"""


class Migration(migrations.Migration):
    dependencies = [("commands_app", "0007_events_command_and_correlation_idx")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
