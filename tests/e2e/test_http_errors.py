"""Errors the HTTP server itself produces, before the app sees a request, are problem+json like
every other error: a body over the limit (with Content-Length and chunked without it), a negative
or duplicated Content-Length, headers too large, a transfer coding it cannot read."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from urllib.parse import urlsplit

import pytest

from tests.support import live

LIMIT = 4096


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = live.start(tmp_path_factory.mktemp("errors") / "var", "--workers", "1",
                     "--max-body-bytes", str(LIMIT))
    yield srv
    srv.stop()


def exchange(server, raw: bytes) -> tuple[int, dict, dict]:
    """Send while reading: the server answers and closes before it has read all of a request
    that is over a limit, and what it sent must be read before the connection resets."""
    where = urlsplit(server.url)
    with socket.create_connection((where.hostname, where.port), timeout=10) as sock:
        def send():
            with contextlib.suppress(OSError):
                sock.sendall(raw)
        sender = threading.Thread(target=send)
        sender.start()
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                data += chunk
        sender.join()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body)


def request(head: str, body: bytes = b"") -> bytes:
    return (f"{head}\r\nHost: test\r\n\r\n").encode() + body


CASES = {
    "body over the limit": (request(f"POST /v1/check HTTP/1.1\r\nContent-Length: {LIMIT * 2}"),
                            413),
    "chunked body over the limit": (
        request("POST /v1/check HTTP/1.1\r\nTransfer-Encoding: chunked",
                b"".join(b"%x\r\n%s\r\n" % (1024, b"x" * 1024) for _ in range(8)) + b"0\r\n\r\n"),
        413),
    "negative Content-Length": (request("POST /v1/check HTTP/1.1\r\nContent-Length: -1"), 400),
    "two Content-Lengths": (request("POST /v1/check HTTP/1.1\r\nContent-Length: 2\r\n"
                                    "Content-Length: 3", b"{}"), 400),
    "headers too large": (request("GET /healthz HTTP/1.1\r\nX-Big: " + "a" * 300_000), 431),
    "unknown transfer coding": (request("POST /v1/check HTTP/1.1\r\n"
                                        "Transfer-Encoding: gzip, chunked"), 501),
}


@pytest.mark.parametrize("case", CASES)
def test_the_servers_own_errors_are_problem_json(server, case):
    raw, expected = CASES[case]
    status, headers, body = exchange(server, raw)
    assert status == expected
    assert headers["content-type"] == "application/problem+json"
    assert body["status"] == expected and body["type"].startswith("https://")
    assert body["title"] and body["detail"]
