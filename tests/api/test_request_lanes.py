"""api/request_lanes.py: which requests the loop thread answers itself, and that it does.

The predicate is fed requests parsed by waitress's own parser; the dispatcher and channel run in
a real waitress server on a loopback port, with an app that records the thread answering.
"""

from __future__ import annotations

import json
import socket
import threading

import pytest
from waitress.adjustments import Adjustments
from waitress.parser import HTTPRequestParser
from waitress.server import create_server

from rolebook.api.request_lanes import LOOP_BODY_BYTES, LaneDispatcher, cpu_only_checks
from rolebook.api.server_errors import ProblemChannel

CHECK = {"principal": {"id": "ed", "role": "edit"}, "policy": "convert",
         "resources": [{"kind": "object", "id": "42", "actions": ["delete"]}]}


def parsed(method: str, path: str, body: bytes = b"", auth: str = "Bearer t") -> HTTPRequestParser:
    parser = HTTPRequestParser(Adjustments())
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n" \
           f"Content-Length: {len(body)}\r\n\r\n"
    data = head.encode() + body
    while data and not parser.completed:  # as waitress's channel feeds it
        data = data[parser.received(data):]
    assert parser.completed
    return parser


def body(**extra) -> bytes:
    return json.dumps({**CHECK, **extra}).encode()


@pytest.mark.parametrize(("method", "path", "raw", "expected"), [
    ("POST", "/v1/check", body(), True),
    ("POST", "/v1/check?explain=true", body(), True),
    ("POST", "/v1/check", body(account_id="acc_1"), False),  # storage: the pool's
    ("POST", "/v1/check", body().replace(b'"edit"', b'"\\u0065dit"'), False),  # could hide one
    ("POST", "/v1/check", body(pad="x" * LOOP_BODY_BYTES), False),
    ("GET", "/v1/check", b"", False),
    ("POST", "/v1/accounts", b'{"name": "Acme"}', False),
])
def test_the_loop_takes_checks_that_need_no_storage(method, path, raw, expected):
    assert cpu_only_checks(lambda header: True)(parsed(method, path, raw)) is expected


def test_a_token_that_needs_the_network_goes_to_the_pool():
    asked = []

    def offline(header: str) -> bool:
        asked.append(header)
        return False

    assert cpu_only_checks(offline)(parsed("POST", "/v1/check", body(), "Bearer abc")) is False
    assert asked == ["Bearer abc"]


def test_the_body_is_still_there_for_the_app():
    request = parsed("POST", "/v1/check", body())
    assert cpu_only_checks(lambda header: True)(request)
    assert request.get_body_stream().read() == body()


class Threads:
    """A WSGI app answering with the thread it ran on, served by waitress with our lanes."""

    def __init__(self):
        def app(environ, start_response):
            environ["wsgi.input"].read()
            answer = str(threading.get_ident()).encode()
            start_response("200 OK", [("Content-Length", str(len(answer)))])
            return [answer]

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        self.dispatcher = LaneDispatcher(2, lambda request: request.path == "/loop")
        self.server = create_server(app, sockets=[sock], _dispatcher=self.dispatcher)
        self.server.channel_class = ProblemChannel
        self.port = sock.getsockname()[1]
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.started.wait(5)

    def _run(self):
        self.dispatcher.loop_thread = threading.get_ident()
        self.started.set()
        self.server.run()

    def send(self, *paths: str) -> list[int]:
        """The paths as requests pipelined in one write on one connection; each answer's
        thread, in order."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(b"".join(f"POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}"
                                  .encode() for p in paths))
            data, answers = b"", []
            while len(answers) < len(paths):
                chunk = conn.recv(65536)
                assert chunk, f"closed after {answers}"
                data += chunk
                while b"\r\n\r\n" in data:
                    head, _, rest = data.partition(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                    if len(rest) < length:
                        break
                    answers.append(int(rest[:length]))
                    data = rest[length:]
            return answers

    def close(self):
        self.server.task_dispatcher.shutdown()
        self.server.close()


@pytest.fixture
def threads():
    served = Threads()
    yield served
    served.close()


def test_the_loop_thread_answers_what_the_dispatcher_keeps(threads):
    loop = threads.thread.ident
    assert threads.send("/loop") == [loop]
    assert threads.send("/pool")[0] != loop
    # Pipelined, each answer in its turn. A pool thread that finishes a request hands the next
    # to the pool: only the loop thread keeps requests on the loop.
    answers = threads.send("/loop", "/loop", "/pool", "/loop")
    assert answers[:2] == [loop, loop]
    assert loop not in answers[2:]
