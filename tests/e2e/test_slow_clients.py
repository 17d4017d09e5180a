"""Slow clients cannot starve ordinary ones: while a bounded number of connections trickle their
request headers a byte at a time, a real `rolebook serve` keeps answering ordinary requests
promptly (waitress reads headers on its I/O loop, not on a request thread). The figure printed
is the ordinary clients' latency during the trickle."""

from __future__ import annotations

import socket
import statistics
import threading
import time
import urllib.request
from urllib.parse import urlsplit

import pytest

from tests.support import live

SLOW_CLIENTS = 64
TRICKLE_SECONDS = 4.0
ORDINARY_REQUESTS = 100


@pytest.fixture
def server(tmp_path):
    srv = live.start(tmp_path / "var", "--workers", "1", "--threads", "4",
                     "--decision-log", "off")
    yield srv
    srv.stop()


def trickle(host: str, port: int, stop: threading.Event) -> None:
    """Send a request line and headers one byte at a time until told to stop."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 10_000
    try:
        with socket.create_connection((host, port), timeout=5) as sock:
            for byte in head:
                if stop.wait(0.02):
                    return
                sock.sendall(bytes([byte]))
    except OSError:
        return


def test_ordinary_clients_are_answered_while_slow_clients_trickle(server):
    where = urlsplit(server.url)
    stop = threading.Event()
    slow = [threading.Thread(target=trickle, args=(where.hostname, where.port, stop))
            for _ in range(SLOW_CLIENTS)]
    for thread in slow:
        thread.start()
    latencies = []
    try:
        deadline = time.monotonic() + TRICKLE_SECONDS
        while len(latencies) < ORDINARY_REQUESTS and time.monotonic() < deadline + 30:
            started = time.perf_counter()
            with urllib.request.urlopen(server.url + "/healthz", timeout=5) as resp:
                assert resp.status == 200
            latencies.append(time.perf_counter() - started)
    finally:
        stop.set()
        for thread in slow:
            thread.join(timeout=10)
    assert len(latencies) == ORDINARY_REQUESTS
    p99 = statistics.quantiles(latencies, n=100)[98]
    print(f"ordinary clients with {SLOW_CLIENTS} slow ones: p50 "
          f"{statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    assert max(latencies) < 5  # every ordinary request answered, none waited on the slow ones
