"""One command yields one connected trace, and its correlation id is the trace id.

The command runs in-process here: the HTTP request through Django's test client
(middleware and view as in the server), then execution.execute() and the
projection runner's catch_up() called directly instead of through Celery, so
that every span lands in this process's in-memory exporter. The task messages
are not published (enqueue and the projection wake-up are stubbed) so that a
worker of another test cannot take the command first. Across processes the
context travels in PostgreSQL (the command row, the events' metadata), which is
exactly what this path reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind

from commands_app import acceptance, execution
from commands_app.models import CommandRecord, StoredEvent
from observability import tracing
from projections import runner
from tests.support.projections import projections_held_here

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def exporter(monkeypatch, settings) -> Iterator[InMemorySpanExporter]:
    settings.COMMANDS_RELAY_ENABLED = False  # no worker's relay publishes them
    monkeypatch.setattr(acceptance, "enqueue", lambda record: None)
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with tracing.use_provider(provider):
        yield memory
    provider.shutdown()


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def one(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    (span,) = by_name(spans, name)
    return span


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


def register(staff_api, **headers: str) -> str:
    response = staff_api.post(
        "/api/commands/register-product/",
        {
            "sku": "TRACE-1",
            "name": "Traced mug",
            "price_cents": 500,
            "initial_stock": 2,
        },
        format="json",
        headers=headers,
    )
    assert response.status_code == 202, response.content
    return str(response.json()["id"])


def test_one_command_yields_one_connected_trace_from_request_to_push(
    exporter, staff_api
) -> None:
    command_id = register(staff_api)
    with projections_held_here():
        execution.execute(UUID(command_id))
        runner.catch_up()

    spans = exporter.get_finished_spans()
    assert len({span.context.trace_id for span in spans}) == 1
    ids = {span.context.span_id for span in spans}
    roots = [span for span in spans if span.parent is None]
    assert len(roots) == 1
    assert roots[0].kind is SpanKind.SERVER
    assert roots[0].name.startswith("HTTP POST /api/commands/")
    assert all(parent_of(span) in ids for span in spans if span is not roots[0])

    accept = one(spans, "command.accept")
    execute = one(spans, "command.execute")
    append = one(spans, "eventstore.append")
    assert parent_of(accept) == roots[0].context.span_id
    assert parent_of(execute) == accept.context.span_id
    assert parent_of(one(spans, "command.handle")) == execute.context.span_id
    assert parent_of(append) == execute.context.span_id
    applied = by_name(spans, "projection.apply")
    assert {(span.attributes or {})["projection"] for span in applied} >= {
        "product_catalogue"
    }
    assert {parent_of(span) for span in applied} == {append.context.span_id}
    pushes = by_name(spans, "push.status")
    assert {parent_of(span) for span in pushes} >= {execute.context.span_id}
    assert parent_of(one(spans, "push.projected")) == accept.context.span_id


def test_the_correlation_id_in_the_row_and_the_events_is_the_trace_id(
    exporter, staff_api
) -> None:
    command_id = register(staff_api)
    execution.execute(UUID(command_id))
    trace_id = exporter.get_finished_spans()[0].context.trace_id

    record = CommandRecord.objects.get(pk=command_id)
    assert record.correlation_id == UUID(int=trace_id)
    assert record.traceparent.split("-")[1] == f"{trace_id:032x}"
    (event,) = StoredEvent.objects.filter(metadata__command_id=command_id)
    assert event.metadata["correlation_id"] == str(UUID(int=trace_id))
    assert event.metadata["traceparent"].split("-")[1] == f"{trace_id:032x}"


def test_a_client_traceparent_is_continued(exporter, staff_api) -> None:
    command_id = register(
        staff_api, traceparent=f"00-{CLIENT_TRACE}-b7ad6b7169203331-01"
    )
    assert {span.context.trace_id for span in exporter.get_finished_spans()} == {
        int(CLIENT_TRACE, 16)
    }
    record = CommandRecord.objects.get(pk=command_id)
    assert record.correlation_id == UUID(CLIENT_TRACE)


def test_without_a_tracer_the_events_still_share_one_correlation_id(
    monkeypatch, settings, staff_api
) -> None:
    settings.COMMANDS_RELAY_ENABLED = False  # no worker's relay publishes them
    monkeypatch.setattr(acceptance, "enqueue", lambda record: None)
    command_id = register(staff_api)
    execution.execute(UUID(command_id))
    record = CommandRecord.objects.get(pk=command_id)
    (event,) = StoredEvent.objects.filter(metadata__command_id=command_id)
    assert event.metadata["correlation_id"] == str(record.correlation_id)
    assert tracing.trace_id_of(event.metadata["traceparent"]) == record.correlation_id


def test_a_batch_spans_each_event_under_its_own_parent_not_under_each_other(exporter):
    with tracing.span("command.execute") as command_span:
        command = tracing.current_traceparent()
    events = [
        (None, {"event.position": 1}),
        (None, {"event.position": 2}),
        (command, {"event.position": 3}),
    ]
    with (
        tracing.span("projection.round") as round_span,
        pytest.raises(RuntimeError),
        tracing.sibling_spans("projection.apply", events),
    ):
        raise RuntimeError("the batch failed")
    applied = by_name(exporter.get_finished_spans(), "projection.apply")
    assert [(span.attributes or {})["event.position"] for span in applied] == [1, 2, 3]
    round_id = round_span.get_span_context().span_id
    command_id = command_span.get_span_context().span_id
    assert [parent_of(span) for span in applied] == [round_id, round_id, command_id]
    assert all(not span.status.is_ok for span in applied)
    assert all(span.events[0].name == "exception" for span in applied)
