"""The access log's direct line (logs.info_line) is the line logging itself would write, and is
only taken where configure() set up the one JSON handler (a test's capture still sees records)."""

from __future__ import annotations

import contextlib
import io
import logging

import orjson

from rolebook.api import logs
from rolebook.api.request_context import REQUEST_ID

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


def test_the_direct_line_is_the_line_logging_writes():
    access = logging.getLogger("rolebook.access")
    token = REQUEST_ID.set("req-1")
    try:
        with json_root() as handler:
            assert logs.info_line(access, "POST /v1/check 200 0.2ms", HTTP)
            access.info("%s", "POST /v1/check 200 0.2ms", extra={"http": HTTP})
            direct, logged = lines(handler)
    finally:
        REQUEST_ID.reset(token)
    assert direct.pop("time")[-1] == logged.pop("time")[-1] == "Z"
    assert direct == logged == {"level": "INFO", "logger": "rolebook.access",
                                "message": "POST /v1/check 200 0.2ms", "request_id": "req-1",
                                "http": HTTP}


def test_any_other_logging_set_up_is_left_to_logging():
    access = logging.getLogger("rolebook.access")
    with json_root() as handler:
        logging.getLogger().addHandler(logging.NullHandler())  # a capture, say
        assert not logs.info_line(access, "GET /healthz 200 0.1ms", HTTP)
        logging.getLogger().handlers[1:] = []
        handler.setFormatter(logging.Formatter(logs.TEXT))
        assert not logs.info_line(access, "GET /healthz 200 0.1ms", HTTP)
        assert lines(handler) == []
