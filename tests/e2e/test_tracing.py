"""Traces over OTLP from a real `rolebook serve` to a real OTLP/HTTP receiver started by the
test: a /v1/check carrying `traceparent` yields a server span in the caller's trace with the
OpenAPI route and the decision id, a child span for policy evaluation, and the database's own
spans; a malformed `traceparent` is ignored (a new trace), never an error."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support import live, postgres
from tests.support.client import User, over_http
from tests.support.mail import wait_for
from tests.support.markers import BACKENDS

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed: "
                    "pip install -e '.[otel]'")
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from rolebook.api.config import Config

SECRET = "e2e-tracing-" + "t" * 32
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class Receiver:
    """OTLP/HTTP: POST /v1/traces with a protobuf ExportTraceServiceRequest."""

    def __init__(self):
        self.spans: list = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        receiver.spans.extend(scope.spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def in_trace(self, trace_id: str) -> list:
        return [s for s in self.spans if s.trace_id.hex() == trace_id]


@pytest.fixture(params=BACKENDS)
def traced(request, tmp_path):
    receiver = Receiver()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "50",
           "OTEL_SERVICE_NAME": "rolebook-test"}
    flags = ["--workers", "1", "--jwt-secret", SECRET]
    with postgres.throwaway_for(request.param, "rolebook_trace") as name:
        if name:
            flags += ["--database-url", postgres.url(name)]
        srv = live.start(tmp_path / "var", *flags, env=env)
        yield srv, receiver
        srv.stop()
    receiver.server.shutdown()


def attributes(span) -> dict:
    return {a.key: a.value.string_value or a.value.int_value for a in span.attributes}


def test_a_check_joins_the_callers_trace_with_evaluation_and_database_spans(traced):
    server, receiver = traced
    config, transport = Config(jwt_secret=SECRET), over_http(server.url)
    alice = User(transport, config, "alice")
    account = alice.post("/v1/accounts", {"name": "Traced"}).json["id"]
    answer = alice.post("/v1/check", {"principal": {"id": "alice"}, "account_id": account,
                                      "resources": [{"kind": "account", "id": account,
                                                     "actions": ["view"]}]},
                        headers={"traceparent": f"00-{TRACE_ID}-{PARENT}-01"})
    assert answer.status == 200, answer.json
    spans = wait_for(lambda: (lambda found: found if any(
        s.name == "rolebook.evaluate" for s in found) else None)(receiver.in_trace(TRACE_ID)),
        timeout=20, what="the check's spans at the receiver")
    [server_span] = [s for s in spans if s.parent_span_id.hex() == PARENT]
    assert attributes(server_span)["rolebook.decision_id"] == answer.json["decision_id"]
    assert attributes(server_span).get("http.route") == "/v1/check"
    evaluate = next(s for s in spans if s.name == "rolebook.evaluate")
    assert evaluate.parent_span_id == server_span.span_id
    database = [s for s in spans if s.span_id not in (server_span.span_id, evaluate.span_id)]
    assert database and all(s.parent_span_id == server_span.span_id for s in database)


def test_a_malformed_traceparent_starts_a_new_trace(traced):
    server, receiver = traced
    config, transport = Config(jwt_secret=SECRET), over_http(server.url)
    service = User(transport, config, "svc", scope="check")
    answer = service.post("/v1/check", {"principal": {"id": "x", "role": "read"},
                                        "resources": [{"kind": "report", "id": "1",
                                                       "actions": ["view"]}]},
                          headers={"traceparent": "00-zz-not-a-trace-01"})
    assert answer.status == 200
    wait_for(lambda: any(s.name == "rolebook.evaluate" for s in receiver.spans), timeout=20,
             what="a span for the check")
