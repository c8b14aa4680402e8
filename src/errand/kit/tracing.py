"""OpenTelemetry traces, off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

When it is set (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), :func:`configure` builds a
TracerProvider whose spans leave through a BatchSpanProcessor and the OTLP/HTTP exporter, which
reads the standard ``OTEL_EXPORTER_OTLP_*`` variables itself (endpoint, headers, timeout);
``service.name`` is ``errand`` unless ``OTEL_SERVICE_NAME`` says otherwise. Otherwise every
:func:`span` is one shared no-op context manager: the hot path pays a global read.

Every HTTP request still gets a trace id either way (:func:`start_request`): the incoming W3C
``traceparent``'s, or a new random one, so a ``traceparent`` response header and the log lines
name the trace a caller can look for.
"""

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

_tracer: Any = None  # opentelemetry.trace.Tracer when on
_provider: Any = None  # its TracerProvider, for shutdown
_NOOP: AbstractContextManager[None] = nullcontext()

# W3C Trace Context: version-traceid-parentid-flags, lowercase hex; all-zero ids are invalid.
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def configure(environ: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on when an OTLP endpoint is configured (see the module), else off; returns whether on.

    Idempotent per process: calling it again replaces the provider (flushing the old one).
    """
    global _tracer, _provider
    env = os.environ if environ is None else environ
    shutdown()
    if not (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return False
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from errand import __version__

    attributes = {"service.version": __version__}
    if not env.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = "errand"
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _provider, _tracer = provider, provider.get_tracer("errand")
    return True


def shutdown() -> None:
    """Flush and stop the exporter (a lifespan's end); tracing is off afterwards."""
    global _tracer, _provider
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def enabled() -> bool:
    return _tracer is not None


def span(name: str, attributes: Mapping[str, Any] | None = None) -> AbstractContextManager[Any]:
    """A child span of the current one named ``name`` while tracing is on; a shared no-op otherwise."""
    tracer = _tracer
    if tracer is None:
        return _NOOP
    return tracer.start_as_current_span(name, attributes=attributes)


def traced(name: str) -> Any:
    """Decorate an async function: each call runs in a span ``name`` (when tracing is on)."""

    def decorate(function: Any) -> Any:
        from functools import wraps

        @wraps(function)
        async def run(*args: Any, **kwargs: Any) -> Any:
            with span(name):
                return await function(*args, **kwargs)

        return run

    return decorate


@dataclass
class RequestTrace:
    """One request's place in a trace: its ids, its response ``traceparent``, its span when recording."""

    trace_id: str
    traceparent: str
    span: Any = None
    token: Any = None


def _parse(traceparent: str | None) -> tuple[str, str, str] | None:
    if not traceparent:
        return None
    match = _TRACEPARENT.match(traceparent.strip())
    if match is None:
        return None
    version, trace_id, parent_id, flags = match.groups()
    if version == "ff" or trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return trace_id, parent_id, flags


def start_request(method: str, traceparent: str | None) -> RequestTrace:
    """Begin a request's trace: continue ``traceparent`` when valid, else start a new trace.

    With tracing on, a SERVER span is started and made current (end it with :func:`end_request`);
    off, only ids are made (the request's span id is random), so the response header and logs
    still carry the trace.
    """
    parent = _parse(traceparent)
    if _tracer is None:
        trace_id = parent[0] if parent else os.urandom(16).hex()
        flags = parent[2] if parent else "00"
        return RequestTrace(trace_id, f"00-{trace_id}-{os.urandom(8).hex()}-{flags}")
    from opentelemetry import context, trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {"traceparent": traceparent} if parent else {}
    parent_context = TraceContextTextMapPropagator().extract(carrier)
    request_span = _tracer.start_span(method, context=parent_context, kind=trace.SpanKind.SERVER,
                                      attributes={"http.request.method": method})
    token = context.attach(trace.set_span_in_context(request_span, parent_context))
    ids = request_span.get_span_context()
    trace_id = f"{ids.trace_id:032x}"
    return RequestTrace(trace_id, f"00-{trace_id}-{ids.span_id:016x}-{int(ids.trace_flags):02x}", request_span, token)


def end_request(request: RequestTrace, method: str, route: str, status: int) -> None:
    """Name the request's span after its route template, record the status, end it."""
    if request.span is None:
        return
    from opentelemetry import context, trace

    request.span.update_name(f"{method} {route}")
    request.span.set_attribute("http.route", route)
    request.span.set_attribute("http.response.status_code", status)
    if status >= 500:
        request.span.set_status(trace.Status(trace.StatusCode.ERROR))
    request.span.end()
    context.detach(request.token)


@contextmanager
def task_span(task: str) -> Iterator[str | None]:
    """A root span for one background task run (a job run); yields its trace id (None when off)."""
    if _tracer is None:
        yield None
        return
    from opentelemetry import context

    with _tracer.start_as_current_span(f"task {task}", context=context.Context(),
                                       attributes={"errand.task": task}) as task_run:
        yield f"{task_run.get_span_context().trace_id:032x}"


def instrument_engine(engine: Any) -> None:
    """A ``db`` span around every statement of ``engine`` (an AsyncEngine), while tracing is on.

    SQLAlchemy's cursor events: the statement's first word only (``SELECT``, ``INSERT``…) is
    recorded, never its parameters.
    """
    from sqlalchemy import event

    sync_engine = engine.sync_engine
    if getattr(sync_engine, "_errand_traced", False):
        return
    sync_engine._errand_traced = True

    def before(conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        tracer = _tracer
        if tracer is None or context is None:
            return
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        context._errand_span = tracer.start_span(f"db {verb}", attributes={
            "db.system": conn.dialect.name, "db.operation.name": verb})

    def after(_conn: Any, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool) -> None:
        db_span = getattr(context, "_errand_span", None)
        if db_span is not None:
            db_span.end()
            context._errand_span = None

    def failed(exception_context: Any) -> None:
        db_span = getattr(exception_context.execution_context, "_errand_span", None)
        if db_span is not None:
            from opentelemetry import trace

            db_span.set_status(trace.Status(trace.StatusCode.ERROR))
            db_span.end()
            exception_context.execution_context._errand_span = None

    event.listen(sync_engine, "before_cursor_execute", before)
    event.listen(sync_engine, "after_cursor_execute", after)
    event.listen(sync_engine, "handle_error", failed)
