"""`api.prepared.fetch_models`: rows of a prepared statement as model instances.

The hot paths that claim a command or an effect and that mark commands
projected read their rows through it instead of `Model.objects.raw()`: the
instances must be the ones the ORM would build (values converted by the
fields), with the statement's other columns as attributes.
"""

from __future__ import annotations

from uuid import uuid4

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api.prepared import fetch_models
from commands_app.models import CommandRecord
from tests.conftest import make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

SQL = (
    "UPDATE commands SET status_seq = status_seq + 1 WHERE id = %s "
    "RETURNING *, status_seq * 10 AS tenfold"
)


def a_command() -> CommandRecord:
    return CommandRecord.objects.create(
        type="place-order",
        user=make_user("prepared"),
        payload={"order_id": "o-1", "lines": [{"sku": "MUG", "quantity": 2}]},
        request_hash="h",
        error={"code": "x"},
    )


def test_rows_are_the_instances_the_orm_builds_with_the_other_columns_as_attributes():
    stored = a_command()

    [record] = fetch_models(CommandRecord, SQL, [stored.pk])

    orm = CommandRecord.objects.get(pk=stored.pk)
    fields = [f.attname for f in CommandRecord._meta.concrete_fields]
    assert [getattr(record, f) for f in fields] == [getattr(orm, f) for f in fields]
    assert record.payload["lines"] == [{"sku": "MUG", "quantity": 2}]  # JSON decoded
    assert record.tenfold == orm.status_seq * 10  # type: ignore[attr-defined]
    assert not record._state.adding
    assert record._state.db == "default"


def test_no_row_is_an_empty_list_and_a_statement_without_every_field_is_refused():
    assert fetch_models(CommandRecord, SQL, [uuid4()]) == []
    with pytest.raises(ValueError, match="lacks"):
        fetch_models(CommandRecord, "SELECT id FROM commands", [])


def test_a_kept_query_log_shows_the_statement_with_its_values():
    stored = a_command()
    with CaptureQueriesContext(connection) as log:
        fetch_models(CommandRecord, SQL, [stored.pk])
    [query] = [q["sql"] for q in log.captured_queries if "status_seq" in q["sql"]]
    assert stored.pk.hex in query
    with connection.cursor() as cursor:  # runnable as logged (EXPLAIN, say)
        cursor.execute("EXPLAIN " + query)
