"""api/one_send.py: waitress's task, with the head and a single body chunk in one send.

Each response is served by waitress's own task and by ours through a channel that records what
it was asked to send: the bytes must be the same (Date aside), and a Falcon-shaped answer (one
chunk, a Content-Length) must take one send where waitress takes two.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from waitress.adjustments import Adjustments
from waitress.parser import HTTPRequestParser
from waitress.task import WSGITask

from rolebook.api.one_send import OneSendTask


class RecordingChannel:
    def __init__(self, app):
        self.adj = Adjustments()
        self.server = SimpleNamespace(adj=self.adj, application=app, effective_port=8080,
                                      server_name="localhost", effective_host="127.0.0.1")
        self.addr = ("127.0.0.1", 40000)
        self.sent: list[bytes] = []

    def write_soon(self, data) -> int:
        if data:
            self.sent.append(bytes(data))
        return len(data)

    def check_client_disconnected(self) -> None:
        pass


def request(method: str, version: str = "1.1") -> HTTPRequestParser:
    parser = HTTPRequestParser(Adjustments())
    parser.received(f"{method} /v1/check HTTP/{version}\r\nHost: x\r\n\r\n".encode())
    assert parser.completed
    return parser


def app_of(status: str, headers: list, chunks: list[bytes]):
    def app(environ, start_response):
        start_response(status, headers)
        return iter(chunks) if len(chunks) != 1 else chunks
    return app


def serve(task_class, app, method="POST", version="1.1") -> list[bytes]:
    channel = RecordingChannel(app)
    task_class(channel, request(method, version)).service()
    return channel.sent


def without_date(sent: list[bytes]) -> bytes:
    return re.sub(rb"Date: [^\r]*\r\n", b"", b"".join(sent))


BODY = b'{"results":[]}'
SIZED = [("Content-Length", str(len(BODY)))]
CASES = {
    "one chunk, Content-Length": ("200 OK", SIZED, [BODY], "POST", "1.1"),
    "one chunk, no Content-Length": ("200 OK", [], [BODY], "POST", "1.1"),
    "several chunks, chunked": ("200 OK", [], [b"ab", b"cd"], "POST", "1.1"),
    "several chunks, HTTP/1.0": ("200 OK", [], [b"ab", b"cd"], "POST", "1.0"),
    "body over its Content-Length": ("200 OK", [("Content-Length", "3")], [BODY], "POST", "1.1"),
    "HEAD": ("200 OK", SIZED, [BODY], "HEAD", "1.1"),
    "204": ("204 No Content", [], [b""], "DELETE", "1.1"),
    "empty body": ("200 OK", [("Content-Length", "0")], [b""], "GET", "1.1"),
}


@pytest.mark.parametrize("case", CASES)
def test_the_same_bytes_as_waitress(case):
    status, headers, chunks, method, version = CASES[case]
    ours = serve(OneSendTask, app_of(status, headers, chunks), method, version)
    theirs = serve(WSGITask, app_of(status, headers, chunks), method, version)
    assert without_date(ours) == without_date(theirs)
    assert len(ours) <= len(theirs)


def test_a_falcon_shaped_answer_is_one_send_not_two():
    app = app_of("200 OK", SIZED, [BODY])
    assert len(serve(WSGITask, app)) == 2
    (sent,) = serve(OneSendTask, app)
    assert sent.startswith(b"HTTP/1.1 200 OK\r\n") and sent.endswith(b"\r\n\r\n" + BODY)
