"""Lines from request threads, written by one thread in batches.

A request thread only appends its line to a deque. The writer thread, woken by the first line
of a batch, waits BATCH_SECONDS for more (less when asked to flush or close) and writes them
with one write and one flush. Writing
each line as it came (a queue hand-over, a lock and a syscall per line, often two threads
contending for the file's lock) was a third of a worker's time at one check per request
(py-spy, 32 connections): the access log and the decision log each paid it.
"""

from __future__ import annotations

import signal
import threading
from collections import deque
from collections.abc import Callable
from typing import IO

BATCH_SECONDS = 0.05
# put() wakes the writer only when it finds no line waiting (cheap, but a line appended while the
# writer empties the deque may miss the wake-up): an idle writer looks again this often.
IDLE_SECONDS = 0.5
_STOP = object()


class LineWriter:
    def __init__(self, open_stream: Callable[[], IO],
                 reopen: Callable[[IO], bool] = lambda out: False,
                 on_written: Callable[[int], None] = lambda size: None, name: str = "lines",
                 render: Callable[[object], bytes | str] | None = None):
        """`open_stream` gives the stream to write (again when `reopen(stream)` says so, e.g.
        after log rotation); `on_written(bytes)` follows each batch. With `render`, what put()
        gets is turned into its line here, in the writer thread, a batch at a time."""
        self._open, self._reopen, self._on_written = open_stream, reopen, on_written
        self._render = render
        self._lines: deque = deque()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._write_forever, name=name, daemon=True)
        self._thread.start()

    def put(self, line) -> None:
        if not self._lines:
            self._wake.set()
        self._lines.append(line)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every line put so far is written."""
        if not self._thread.is_alive():
            return
        written = threading.Event()
        self._lines.append(written)
        self._wake.set()
        written.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is left, then stop the thread."""
        if self._thread.is_alive():
            self._lines.append(_STOP)
            self._wake.set()
            self._thread.join(timeout)

    def _write_forever(self) -> None:
        # A thread may start before the server blocks its control signals (the first log line
        # comes early): it must never be the one the kernel hands a process's SIGHUP or
        # SIGCHLD to, or the supervisor's sigwait would never see it.
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        out = self._open()
        stopping = False
        while not stopping:
            self._wake.wait(IDLE_SECONDS)
            self._wake.clear()
            if not self._lines:
                continue
            if not isinstance(self._lines[-1], threading.Event) and self._lines[-1] is not _STOP:
                self._gather(BATCH_SECONDS)
            batch, waiting = [], []
            for _ in range(len(self._lines)):
                item = self._lines.popleft()
                if item is _STOP:
                    stopping = True
                elif isinstance(item, threading.Event):
                    waiting.append(item)
                else:
                    batch.append(item)
            if batch:
                if self._render is not None:
                    batch = [self._render(item) for item in batch]
                if self._reopen(out):
                    out.close()
                    out = self._open()
                data = batch[0][:0].join(batch)  # bytes or text, as put
                try:
                    out.write(data)
                    out.flush()
                except ValueError:  # the stream was closed under us (a handler replaced)
                    stopping = True
                else:
                    self._on_written(len(data))
            for event in waiting:
                event.set()

    def _gather(self, seconds: float) -> None:
        """Gather a batch for `seconds`, cut short by a flush or close."""
        self._wake.wait(seconds)
        self._wake.clear()
