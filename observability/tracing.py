"""OpenTelemetry tracing at the few boundaries of a command's path.

Off (the API's no-op tracer) unless OTEL_EXPORTER_OTLP_ENDPOINT is set, or
OTEL_TRACES_EXPORTER=console for development. The context crosses processes in
W3C `traceparent` strings stored in PostgreSQL, not in broker headers: the
command row carries the accepting span's, each event's metadata the appending
span's, so that a re-driven command or a replayed event still joins its trace.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from uuid import UUID

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    TracerProvider,
)
from opentelemetry.trace.propagation.tracecontext import (
    TraceContextTextMapPropagator,
)

logger = logging.getLogger(__name__)

TRACER_NAME = "cqrs_orders"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_propagator = TraceContextTextMapPropagator()
# A provider set by configure() or by a test; None means the global one.
_provider: TracerProvider | None = None


def configure_from_settings() -> None:
    """Install an SDK tracer provider if the settings ask for an exporter."""
    from django.conf import settings

    endpoint = getattr(settings, "OTEL_EXPORTER_OTLP_ENDPOINT", "")
    exporter = getattr(settings, "OTEL_TRACES_EXPORTER", "")
    if exporter == "console" or (endpoint and exporter in ("", "otlp")):
        configure(
            service_name=getattr(settings, "OTEL_SERVICE_NAME", "cqrs-orders"),
            exporter=exporter or "otlp",
        )


def configure(*, service_name: str, exporter: str) -> None:
    """Set the global tracer provider with a batching exporter."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    span_exporter: SpanExporter
    if exporter == "console":
        span_exporter = ConsoleSpanExporter()
    else:
        # Reads OTEL_EXPORTER_OTLP_ENDPOINT (adds /v1/traces) and _HEADERS itself.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        span_exporter = OTLPSpanExporter()
    resource = Resource.create(
        {"service.name": service_name, "process.pid": os.getpid()}
    )
    provider = SdkTracerProvider(resource=resource)
    # The processor's thread is restarted in forked children (Celery prefork).
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(provider)
    logger.info("tracing on: %s exporter", exporter)


@contextlib.contextmanager
def use_provider(provider: TracerProvider | None) -> Iterator[None]:
    """Trace with `provider` inside the block (tests: an in-memory exporter)."""
    global _provider
    previous, _provider = _provider, provider
    try:
        yield
    finally:
        _provider = previous


def tracer() -> Tracer:
    if _provider is not None:
        return _provider.get_tracer(TRACER_NAME)
    return trace.get_tracer(TRACER_NAME)


@contextlib.contextmanager
def span(
    name: str,
    *,
    parent: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """Open a span, as a child of `parent` (a traceparent) or of the current one."""
    ctx = extract(parent) if parent else None
    with tracer().start_as_current_span(
        name, context=ctx, kind=kind, attributes=_clean(attributes)
    ) as current:
        yield current


@contextlib.contextmanager
def sibling_spans(
    name: str, parents_and_attributes: Sequence[tuple[str | None, Mapping[str, Any]]]
) -> Iterator[list[Span]]:
    """Open one span per (parent traceparent, attributes) over the same block.

    None of them becomes the current span, so that one without a parent is a
    child of the span current here, not of the one opened before it (as spans
    nested with `span()` would be). An exception is recorded on each.
    """
    here = otel_context.get_current()
    opened = [
        tracer().start_span(
            name,
            context=extract(parent) if parent else here,
            attributes=_clean(attributes),
        )
        for parent, attributes in parents_and_attributes
    ]
    try:
        yield opened
    except BaseException as exc:
        for one in opened:
            one.record_exception(exc)
            one.set_status(Status(StatusCode.ERROR, repr(exc)))
        raise
    finally:
        for one in opened:
            one.end()


@contextlib.contextmanager
def server_span(
    name: str, headers: Mapping[str, str], attributes: Mapping[str, Any]
) -> Iterator[Span]:
    """Open the span of an incoming request, continuing a client's traceparent."""
    ctx = _propagator.extract(
        carrier={key.lower(): value for key, value in headers.items()}
    )
    token = otel_context.attach(ctx)
    try:
        with span(name, kind=SpanKind.SERVER, attributes=attributes) as current:
            yield current
    finally:
        otel_context.detach(token)


def extract(traceparent: str) -> otel_context.Context:
    return _propagator.extract(carrier={"traceparent": traceparent})


def current_traceparent() -> str | None:
    """Return the W3C traceparent of the current span, or None if there is none."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    flags = "01" if ctx.trace_flags.sampled else "00"
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{flags}"


def traceparent_for(correlation_id: UUID) -> str:
    """Return an unsampled traceparent whose trace id is a correlation id.

    Used when tracing is off, so that logs and events still carry one id that
    a later-enabled tracer would continue.
    """
    return f"00-{correlation_id.hex}-{secrets.token_hex(8)}-00"


def trace_id_of(traceparent: str | None) -> UUID | None:
    """Return the trace id of a traceparent as a UUID (the correlation id)."""
    match = TRACEPARENT.match(traceparent or "")
    return UUID(match.group(1)) if match else None


def current_ids() -> tuple[str | None, str | None]:
    """Return the current trace and span ids in hex, for log lines."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def _clean(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        key: value if isinstance(value, str | bool | int | float) else str(value)
        for key, value in (attributes or {}).items()
        if value is not None
    }
