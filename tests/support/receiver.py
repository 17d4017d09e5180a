"""A log receiver for tests: a real HTTP server on a free local port that takes gzip-compressed
JSON-lines POSTs (as the decision log's HTTP sink sends them) and answers `status` (204; a test
sets 503 for an outage, 400 for a refusal), or holds each POST unanswered while `hang()` lasts,
and can be stopped and started again on the same port."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.live import free_port


class Receiver:
    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/ingest"
        self.events: list[dict] = []
        self.posts: list[dict] = []  # headers of every POST answered, refused ones included
        self.status = 204
        self.refused = 0  # POSTs answered with an error
        self.held = 0  # POSTs received while hanging
        self._released = threading.Event()
        self._released.set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not receiver._released.is_set():
                    with receiver._lock:
                        receiver.held += 1
                    receiver._released.wait(60)  # bounded, should a test forget release()
                with receiver._lock:
                    receiver.posts.append(dict(self.headers))
                    if receiver.status >= 400:
                        receiver.refused += 1
                    else:
                        lines = gzip.decompress(body).splitlines()
                        receiver.events += [json.loads(line) for line in lines]
                    self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def hang(self) -> None:
        """From now on, answer no POST until release()."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def stop(self) -> None:
        """Closed: connections are refused until start() again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def count(self) -> int:
        with self._lock:
            return len(self.events)
