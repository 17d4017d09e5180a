"""The decision log's HTTP sink: lines POSTed as gzip-compressed JSON-lines batches.

A request hands its encoded line to `offer`, which only appends it to a buffer bounded in
bytes; past the bound the line is dropped and counted, so a slow or absent receiver never
slows or fails a decision. One thread per process sends: a batch (up to BATCH_BYTES of lines)
once that much is waiting or FLUSH_SECONDS have passed, retried with exponential backoff and
jitter while the receiver is unreachable or answers 408, 429 or 5xx; lines waiting for a retry
still count against the bound. Any other answer but 2xx refuses the batch for good: dropped
and counted. `close()` sends what is buffered for at most CLOSE_SECONDS and counts the rest.

The retry loop is ours rather than a library's: httpx's transport retries connection failures
only, and this loop must also give up at shutdown.
"""

from __future__ import annotations

import gzip
import logging
import random
import threading
import time
from collections import deque
from importlib import metadata

import httpx

log = logging.getLogger("rolebook.decision_log")
BATCH_BYTES = 1024 * 1024  # uncompressed, per POST
FLUSH_SECONDS = 1.0  # a line waits at most about this long while the receiver answers
FIRST_RETRY, LAST_RETRY = 0.25, 30.0  # seconds between tries: doubled each time, capped
CLOSE_SECONDS = 5.0
TIMEOUT_SECONDS = 10.0


def check_url(url: str) -> str:
    """An http(s) URL with a host, or ValueError saying what is wrong."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"an http:// or https:// URL with a host, got {shown(url)!r}")
    return url


def shown(url: str) -> str:
    """The URL without its user and password, for logs and messages."""
    try:
        return str(httpx.URL(url).copy_with(username=None, password=None))
    except (httpx.InvalidURL, TypeError):
        return "(unparsable URL)"


def _version() -> str:
    try:
        return metadata.version("rolebook")
    except metadata.PackageNotFoundError:
        return "unknown"


class HttpShipper:
    def __init__(self, url: str, max_bytes: int, *, on_drop=None, on_sent=None,
                 on_failure=None, batch_bytes: int = BATCH_BYTES,
                 flush_seconds: float = FLUSH_SECONDS):
        self.url, self.max_bytes = check_url(url), max_bytes
        self.batch_bytes, self.flush_seconds = batch_bytes, flush_seconds
        nothing = lambda n=1: None  # noqa: E731
        self._on_drop, self._on_sent = on_drop or nothing, on_sent or nothing
        self._on_failure = on_failure or nothing
        self.dropped = self.sent = 0
        self._lines: deque[bytes] = deque()
        self._bytes = 0  # buffered, including the batch being sent
        self._waiting = 0  # buffered, not yet taken into a batch
        self._cond = threading.Condition()
        self._deadline: float | None = None  # set by close()
        # The URL's user and password, if any, become basic auth (httpx does this).
        self._client = httpx.Client(timeout=TIMEOUT_SECONDS, headers={
            "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip",
            "User-Agent": f"rolebook/{_version()}"})
        self._thread = threading.Thread(target=self._run, name="decision-log-http",
                                        daemon=True)
        self._thread.start()

    def offer(self, line: bytes) -> None:
        """Buffer one line (ending in a newline), or drop and count it; never blocks."""
        with self._cond:
            full = self._deadline is not None or self._bytes + len(line) > self.max_bytes
            if full:
                self.dropped += 1
            else:
                self._lines.append(line)
                self._bytes += len(line)
                self._waiting += len(line)
                if self._waiting >= self.batch_bytes > self._waiting - len(line):
                    self._cond.notify()  # a batch is full: send it without waiting
        if full:
            self._on_drop(1)

    def close(self) -> None:
        """Send what is buffered (at most CLOSE_SECONDS), then stop; the rest is dropped."""
        with self._cond:
            if self._deadline is None:
                self._deadline = time.monotonic() + CLOSE_SECONDS
            self._cond.notify()
        self._thread.join(CLOSE_SECONDS + 1)
        if self._thread.is_alive():  # a POST begun before close() still waits for its answer
            log.warning("decision log: %d bytes of lines not shipped before shutdown (the "
                        "receiver at %s did not answer)", self._bytes, shown(self.url))
            return  # the client stays open under that POST; the process is leaving
        self._client.close()

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if batch:
                self._deliver(batch)

    def _next_batch(self) -> list[bytes] | None:
        """Lines to send now: [] when none are due yet, None when closed and empty."""
        with self._cond:
            self._cond.wait_for(lambda: self._deadline is not None
                                or self._waiting >= self.batch_bytes, self.flush_seconds)
            closing = self._deadline is not None
            if closing and time.monotonic() >= self._deadline:
                self._drop_all()
            if not self._lines:
                return None if closing else []
            batch, size = [], 0
            while self._lines and (not batch or size + len(self._lines[0]) <= self.batch_bytes):
                line = self._lines.popleft()
                batch.append(line)
                size += len(line)
            self._waiting -= size
            return batch

    def _deliver(self, batch: list[bytes]) -> None:
        # Level 1: JSON lines still shrink about tenfold, and the worker's CPU is the
        # decisions' too.
        body = gzip.compress(b"".join(batch), compresslevel=1)
        failures = 0
        while True:
            outcome = self._post(body)
            if outcome != "retry":
                self._settle(batch, delivered=outcome == "sent")
                if failures:
                    log.info("decision log: %s answers again; sending resumed", shown(self.url))
                return
            failures += 1
            self._on_failure(1)
            if failures == 1:
                log.warning("decision log: POST to %s failed; retrying with backoff (lines "
                            "wait, up to %d bytes, then are dropped and counted)",
                            shown(self.url), self.max_bytes)
            pause = min(LAST_RETRY, FIRST_RETRY * 2 ** (failures - 1)) * random.uniform(0.5, 1)
            with self._cond:
                closing = self._deadline is not None
                if closing and time.monotonic() + pause >= self._deadline:
                    self._settle(batch, delivered=False)
                    self._drop_all()
                    return
                # Only close() cuts the pause short, not lines arriving meanwhile.
                self._cond.wait_for(lambda: self._deadline is not None, pause)

    def _post(self, body: bytes) -> str:
        """'sent', 'retry' (unreachable, timeout, 408, 429, 5xx) or 'refused' (anything else)."""
        timeout = TIMEOUT_SECONDS
        if self._deadline is not None:
            timeout = max(0.1, min(timeout, self._deadline - time.monotonic()))
        try:
            answer = self._client.post(self.url, content=body, timeout=timeout)
        except httpx.HTTPError as exc:
            log.debug("decision log: POST failed: %s", type(exc).__name__)
            return "retry"
        if answer.is_success:
            return "sent"
        if answer.status_code in (408, 429) or answer.status_code >= 500:
            return "retry"
        log.warning("decision log: %s refused a batch with %d; its lines are dropped",
                    shown(self.url), answer.status_code)
        return "refused"

    def _settle(self, batch: list[bytes], delivered: bool) -> None:
        with self._cond:
            self._bytes -= sum(len(line) for line in batch)
            if delivered:
                self.sent += len(batch)
            else:
                self.dropped += len(batch)
        (self._on_sent if delivered else self._on_drop)(len(batch))

    def _drop_all(self) -> None:
        """At the close deadline: what is still buffered will not be sent (lock held)."""
        count = len(self._lines)
        self._lines.clear()
        self._bytes = self._waiting = 0
        self.dropped += count
        if count:
            log.warning("decision log: %d lines not shipped before shutdown", count)
            self._on_drop(count)
