"""The event store on the real PostgreSQL: gap-safe reads, append-only, versions."""

from __future__ import annotations

import json
import threading
from uuid import uuid4

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext

from commands_app import eventstore
from commands_app.domain.events import UPCASTERS, ProductRestocked, event_to_data
from commands_app.eventstore import ConcurrencyError, NewEvents, Position
from tests.support.processes import wait_until

from .given import registered

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

INSERT = (
    "INSERT INTO events (stream_id, version, type, data, metadata) "
    "VALUES (%s, 1, 'product.restocked.v1', %s, '{}') RETURNING position"
)


def connect() -> psycopg.Connection:
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"]
    )


def insert(conn: psycopg.Connection, stream: str) -> int:
    data = json.dumps({"product_id": str(uuid4()), "quantity": 1})
    row = conn.execute(INSERT, [stream, data]).fetchone()
    assert row is not None
    return int(row[0])


def positions(checkpoint: Position | None = None) -> list[int]:
    events = eventstore.read_after(checkpoint or Position())
    return [event.position for event in events]


def test_the_reader_waits_for_an_earlier_position_committing_after_a_later_one():
    with connect() as setup:
        first = insert(setup, "s-first")
    wait_until(lambda: positions() == [first])
    a, b = connect(), connect()
    try:
        position_a = insert(a, "s-a")  # A takes the lower position and stays open
        position_b = insert(b, "s-b")
        b.commit()
        assert position_a < position_b
        # A naive `position > checkpoint` read would already return B and, once
        # its checkpoint moved past B, skip A for ever.
        with connection.cursor() as cursor:
            cursor.execute("SELECT position FROM events WHERE position > %s", [first])
            assert [row[0] for row in cursor.fetchall()] == [position_b]
        assert positions() == [first]
        assert positions(eventstore.position_of(first)) == []
        assert eventstore.head() == eventstore.position_of(first)
        a.commit()
        after = wait_until(lambda: positions() if len(positions()) == 3 else None)
        assert after == [first, position_a, position_b]
        assert positions(eventstore.position_of(first)) == [position_a, position_b]
        assert eventstore.head() == eventstore.position_of(position_b)
    finally:
        a.close()
        b.close()


def test_reading_in_batches_resumes_after_the_last_checkpoint_without_gaps():
    events = [registered() for _ in range(5)]
    for event in events:
        with transaction.atomic():
            eventstore.append(
                [NewEvents(f"product-{event.product_id}", 0, (event,))], metadata={}
            )
    wait_until(lambda: len(positions()) == 5)
    seen, checkpoint = [], Position()
    while batch := eventstore.read_after(checkpoint, limit=2):
        seen += batch
        checkpoint = batch[-1].reader_position
    assert [e.to_domain() for e in seen] == events
    assert [e.position for e in seen] == sorted(e.position for e in seen)


def test_the_event_store_refuses_update_and_delete():
    event = registered()
    with transaction.atomic():
        (position,) = eventstore.append(
            [NewEvents(f"product-{event.product_id}", 0, (event,))], metadata={}
        )
    for sql in (
        "UPDATE events SET type = 'tampered' WHERE position = %s",
        "DELETE FROM events WHERE position = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [position])
    stored = eventstore.load_streams([f"product-{event.product_id}"])
    assert stored == {f"product-{event.product_id}": [event]}


def test_the_event_store_refuses_truncate():
    event = registered()
    with transaction.atomic():
        eventstore.append(
            [NewEvents(f"product-{event.product_id}", 0, (event,))], metadata={}
        )
    # A plain session: the test settings let Django's flush between tests
    # truncate (cqrs.allow_truncate_events), nothing else does.
    with connect() as conn, pytest.raises(psycopg.Error, match="append-only"):
        conn.execute("TRUNCATE events")
    stored = eventstore.load_streams([f"product-{event.product_id}"])
    assert stored == {f"product-{event.product_id}": [event]}


def test_an_append_waits_for_a_writer_holding_its_streams_turn():
    event, other = registered(), registered()
    stream = f"product-{event.product_id}"
    held, done = threading.Event(), threading.Event()

    def hold_the_turn() -> None:  # a writer that lost a race on the stream
        try:
            with transaction.atomic():
                eventstore.lock_streams([stream, f"order-{uuid4()}"])
                held.set()
                done.wait(20)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_turn)
    holder.start()
    try:
        assert held.wait(20)
        with transaction.atomic():  # another stream's turn is free
            eventstore.append(
                [NewEvents(f"product-{other.product_id}", 0, (other,))], metadata={}
            )
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '300ms'")
        with (
            pytest.raises(OperationalError, match="lock timeout"),
            transaction.atomic(),
        ):
            eventstore.append([NewEvents(stream, 0, (event,))], metadata={})
        # Nor may an append of several streams, whichever of its turns is held
        # ("order-…" sorts first; each stream's turn is a parameter of its own).
        with (
            pytest.raises(OperationalError, match="lock timeout"),
            transaction.atomic(),
        ):
            eventstore.append(
                [
                    NewEvents(stream, 0, (event,)),
                    NewEvents(f"order-{uuid4()}", 0, (registered(),)),
                ],
                metadata={},
            )
    finally:
        done.set()
        holder.join()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert eventstore.first_event(stream) is None
    with transaction.atomic():  # the turn ends with the holder's transaction
        eventstore.append([NewEvents(stream, 0, (event,))], metadata={})
    assert eventstore.load_streams([stream])[stream] == [event]


def test_turns_taken_in_a_circle_are_a_concurrency_error_for_one_writer():
    first, second = f"order-{uuid4()}", f"order-{uuid4()}"
    holding, errors = threading.Event(), []

    def other_writer() -> None:  # takes `second`, then wants `first`
        try:
            with transaction.atomic():
                eventstore.lock_streams([second])
                holding.set()
                eventstore.lock_streams([first])
        except ConcurrencyError as error:
            errors.append(error)
        finally:
            connection.close()

    with transaction.atomic():
        eventstore.lock_streams([first])
        writer = threading.Thread(target=other_writer)
        writer.start()
        assert holding.wait(20)
        try:
            eventstore.lock_streams([second])  # PostgreSQL breaks the circle
        except ConcurrencyError as error:
            errors.append(error)
            transaction.set_rollback(True)
    writer.join(20)
    assert len(errors) == 1
    assert "deadlock" in str(errors[0])


def test_appending_at_a_stale_version_is_a_concurrency_error_and_appends_nothing():
    event = registered()
    stream = f"product-{event.product_id}"
    with transaction.atomic():
        eventstore.append([NewEvents(stream, 0, (event,))], metadata={})
    restock = ProductRestocked(product_id=event.product_id, quantity=1)
    other = registered()
    with pytest.raises(ConcurrencyError), transaction.atomic():
        eventstore.append(
            [
                NewEvents(f"product-{other.product_id}", 0, (other,)),
                NewEvents(stream, 0, (restock,)),
            ],
            metadata={},
        )
    assert eventstore.load_streams([stream])[stream] == [event]
    assert eventstore.first_event(f"product-{other.product_id}") is None
    with transaction.atomic():
        eventstore.append([NewEvents(stream, 1, (restock,))], metadata={})
    assert eventstore.load_streams([stream])[stream] == [event, restock]


def test_readers_see_a_stored_old_version_as_the_newest_one(monkeypatch):
    def quantity_renamed(data: dict) -> dict:
        data = dict(data)
        data["quantity"] = data.pop("units")
        return data

    monkeypatch.setitem(
        UPCASTERS, "product.restocked.v0", ("product.restocked.v1", quantity_renamed)
    )
    product_id = uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events (stream_id, version, type, data, metadata) "
            "VALUES (%s, 1, 'product.restocked.v0', %s, '{}')",
            [
                f"product-{product_id}",
                json.dumps({"product_id": str(product_id), "units": 3}),
            ],
        )
    wait_until(lambda: len(positions()) == 1)

    (recorded,) = eventstore.read_after(Position())
    assert recorded.type == "product.restocked.v1"
    assert recorded.data == {"product_id": str(product_id), "quantity": 3}
    restocked = ProductRestocked(product_id=product_id, quantity=3)
    assert recorded.to_domain() == restocked
    assert eventstore.load_streams([f"product-{product_id}"]) == {
        f"product-{product_id}": [restocked]
    }


def test_the_append_is_a_prepared_statement_of_the_connection():
    event = registered()
    with transaction.atomic():
        eventstore.append(
            [NewEvents(f"product-{event.product_id}", 0, (event,))], metadata={}
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements "
                # The append's one statement takes its streams' turns, inserts
                # and notifies the projector relays (`... appended AS (INSERT
                # INTO events ...)`).
                "WHERE statement LIKE '%%INSERT INTO events %%'"
            )
            assert cursor.fetchone() == (1,)


def test_an_append_shows_in_the_query_log_when_one_is_kept():
    event = registered()
    with CaptureQueriesContext(connection) as log, transaction.atomic():
        eventstore.append(
            [NewEvents(f"product-{event.product_id}", 0, (event,))],
            metadata={"user_id": 7},
        )
    inserts = [q for q in log.captured_queries if "INSERT INTO events" in q["sql"]]
    assert len(inserts) == 1


def test_an_append_runs_through_execute_wrappers():
    seen: list[str] = []

    def spy(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    event = registered()
    with connection.execute_wrapper(spy), transaction.atomic():
        eventstore.append(
            [NewEvents(f"product-{event.product_id}", 0, (event,))], metadata={}
        )
    assert [sql for sql in seen if "INSERT INTO events" in sql]


def test_reading_after_a_checkpoint_walks_the_index_without_sorting():
    # Ordering by the selected `tx_id::text::bigint` instead of the column
    # sorted every event after the checkpoint on each read.
    # Told to avoid sorting (the table is too small to cost it), the planner
    # can only do so when the order is the index's.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + eventstore.READ_AFTER_SQL, ["0", 0, 1000])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Sort" not in plan, plan
    assert "events_tx_pos_idx" in plan, plan


def test_events_are_stored_as_the_json_text_json_dumps_writes():
    from .test_events import EXAMPLES

    datas = [event_to_data(event) for event in EXAMPLES]
    odd: dict[str, object] = {
        "naïve ☕": 'é\u2028"\\/',
        "n": None,
        "t": True,
        "f": 1.5e-7,
        "e": [],
    }
    unicode = eventstore.json_encoder(ensure_ascii=False)
    for data in [*datas, odd, {"nested": [odd, {"k": [1, 2.0, "3"]}]}]:
        assert eventstore._to_json(data) == json.dumps(data)
        # The rebuild's COPY text keeps non-ASCII characters as they are.
        assert unicode(data) == json.dumps(data, ensure_ascii=False)
    with pytest.raises(TypeError):
        eventstore._to_json({"not json": object()})
    with pytest.raises(TypeError):
        unicode({"not json": object()})
