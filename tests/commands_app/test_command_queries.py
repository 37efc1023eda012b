"""The periodic queries on `commands` walk an index, never the whole table."""

from __future__ import annotations

import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commands_app import dashboard, retention, sweeper
from commands_app.models import CommandRecord
from commands_app.push import status as status_push

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

ON_COMMANDS = re.compile(r'\b(FROM|UPDATE|INTO)\s+"?commands"?\s', re.IGNORECASE)


def test_the_periodic_queries_on_commands_walk_an_index(staff):
    CommandRecord.objects.create(
        type="restock-product",
        user=staff,
        payload={},
        request_hash="-",
        status="succeeded",
        position=5,
        finished_at=timezone.now(),
    )
    with CaptureQueriesContext(connection) as seen:
        dashboard.command_stats()  # every 2 s, by created_at and finished_at
        sweeper.stuck_commands()  # every 2 s, accepted and running ones
        status_push.push_projected([5])  # every projection round, by position
        retention.purge_finished_commands()  # hourly, by finished_at
    queries = [q["sql"] for q in seen.captured_queries if ON_COMMANDS.search(q["sql"])]
    assert len(queries) >= 5, queries

    # Told to avoid scanning (the table is too small to cost it), the planner
    # can only do so when an index serves the query.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for sql in queries:
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Seq Scan on commands" not in plan, (sql, plan)
