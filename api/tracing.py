"""OpenTelemetry traces, off unless the standard OTEL_* variables ask for them.

With `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`, or `OTEL_TRACES_EXPORTER=otlp`) set
and the `otel` extra installed (`pip install 'rolebook[otel]'`), each worker exports spans over
OTLP/HTTP: one per request from the maintained Falcon instrumentation (it honours `traceparent`),
with `rolebook.decision_id`; a child span for policy evaluation; and the database's own spans
from the psycopg2 and sqlite3 instrumentations. Off, `span` and `annotate` cost one boolean test.
"""

from __future__ import annotations

import contextlib
import logging
import os

log = logging.getLogger("rolebook.tracing")
_tracer = None


def requested(environ=os.environ) -> bool:
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                or environ.get("OTEL_TRACES_EXPORTER", "none") not in ("", "none"))


def start() -> bool:
    """Set up tracing in this process (a worker, after fork: the exporter runs a thread), before
    the Falcon app is built. False when not asked for, or when the extra is missing (logged)."""
    global _tracer
    if not requested():
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.falcon import FalconInstrumentor
        from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor
        from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        log.warning("OTEL_* variables ask for traces, but %s is not installed: "
                    "pip install 'rolebook[otel]'; tracing stays off", exc.name)
        return False
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME",
                                                               "rolebook")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    FalconInstrumentor().instrument()
    Psycopg2Instrumentor().instrument()
    SQLite3Instrumentor().instrument()
    _tracer = trace.get_tracer("rolebook")
    return True


def stop() -> None:
    """Export what is buffered (a draining worker)."""
    if _tracer is not None:
        from opentelemetry import trace

        trace.get_tracer_provider().shutdown()


def span(name: str):
    """A child span of the current request's, or nothing when tracing is off."""
    if _tracer is None:
        return contextlib.nullcontext()
    return _tracer.start_as_current_span(name)


def annotate(key: str, value) -> None:
    """An attribute on the current request's span."""
    if _tracer is not None:
        from opentelemetry import trace

        trace.get_current_span().set_attribute(key, value)
