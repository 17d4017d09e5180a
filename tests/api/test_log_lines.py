"""The access line formatted in the writer thread (logs.access_line) is the line logging itself
would write, and is only taken where configure() set up the one JSON handler (a test's capture
still sees records)."""

from __future__ import annotations

import contextlib
import io
import logging

import orjson

from rolebook.api import logs
from rolebook.api.request_context import REQUEST_ID

FIELDS = ("POST", "/v1/check", 200, 0.00025, 120, "svc")
HTTP = {"method": "POST", "route": "/v1/check", "status": 200, "duration_ms": 0.25,
        "bytes": 120, "sub": "svc"}


@contextlib.contextmanager
def json_root():
    """The root logger as `configure(level, 'json')` leaves it, writing to a buffer (set in the
    test itself: pytest adds its own capturing handlers to the root when a test starts)."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    handler = logs.BatchedStreamHandler(io.StringIO())
    handler.addFilter(logs.RequestIdFilter())
    handler.setFormatter(logs.JsonFormatter())
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        handler.close()
        root.handlers[:] = saved
        root.setLevel(level)


def lines(handler) -> list[dict]:
    handler.flush()
    return [orjson.loads(line) for line in handler.stream.getvalue().splitlines()]


class Kept(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_the_writer_threads_line_is_the_line_logging_writes():
    access = logging.getLogger("rolebook.access")
    token = REQUEST_ID.set("req-1")
    try:
        with json_root() as handler:
            logs.access_line(access, FIELDS)
            REQUEST_ID.set("req-2")  # the line keeps the id of the request that logged it
            logs.access_line(access, (*FIELDS[:2], 503, 2.5, 0, None))
            REQUEST_ID.set("req-1")
            access.info("%s", "POST /v1/check 200 0.2ms", extra={"http": HTTP})
            direct, other, logged = lines(handler)
    finally:
        REQUEST_ID.reset(token)
    assert direct.pop("time")[-1] == logged.pop("time")[-1] == "Z"
    assert direct == logged == {"level": "INFO", "logger": "rolebook.access",
                                "message": "POST /v1/check 200 0.2ms", "request_id": "req-1",
                                "http": HTTP}
    assert other["request_id"] == "req-2"
    assert other["message"] == "POST /v1/check 503 2500.0ms"
    assert other["http"] == {**HTTP, "status": 503, "duration_ms": 2500.0, "bytes": 0,
                             "sub": None}


def test_any_other_logging_set_up_is_left_to_logging():
    access = logging.getLogger("rolebook.access")
    with json_root() as handler:
        kept = Kept()
        logging.getLogger().addHandler(kept)  # a capture, say
        logs.access_line(access, FIELDS)
        logging.getLogger().handlers[1:] = []
        handler.setFormatter(logging.Formatter(logs.TEXT))
        logs.access_line(access, FIELDS)
        handler.flush()
        first, second = handler.stream.getvalue().splitlines()
    assert [r.http for r in kept.records] == [HTTP]  # the capture saw the record
    assert orjson.loads(first)["http"] == HTTP
    assert second.endswith("rolebook.access [-]: POST /v1/check 200 0.2ms")  # as text
