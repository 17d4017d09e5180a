"""Where waitress runs a request: health probes on threads of their own, a decision that needs
nothing but the CPU on the loop thread itself, everything else on the request threads.

Probes. Waitress hands every request to one pool of request threads. While the database hangs,
each of those may be blocked for up to the database timeouts; a liveness probe queued behind them
would time out and get a healthy process restarted. So /healthz and /readyz have a second small
pool (/healthz touches no database; /readyz waits at most its own --ready-timeout).

The loop. Handing a request to a pool thread is a thread wake-up, and on this VM's two cores the
loop thread spent an eighth of its time in that one call (py-spy, one check a request at 32
connections), then both threads queued for the GIL. A POST /v1/check that names no account
touches no storage: with the caller's token verifiable offline (api/auth.py `offline`), nothing
in it can wait, so the loop thread answers it between two reads. Waitress served 37% more such
requests a second, with p99 21 ms → 14 ms (median of eight alternating pairs, all positive; 32
connections, one check a request). A body that mentions an account, or carries a \\u escape
(which could spell one), goes to the pool as before, so a slow database never holds the loop,
and with it the probes.

Waitress takes a dispatcher as `create_server(_dispatcher=...)`; the channel runs what the
dispatcher kept for the loop (api/server_errors.py `ProblemChannel`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from waitress.task import ThreadedTaskDispatcher

PROBE_PATHS = frozenset({"/healthz", "/readyz"})
PROBE_THREADS = 2  # a /healthz is not held up by one /readyz waiting for the database
LOOP_BODY_BYTES = 64 * 1024  # larger bodies are not read twice on the loop thread


class LaneDispatcher(ThreadedTaskDispatcher):
    def __init__(self, threads: int, on_loop: Callable[[object], bool] | None = None) -> None:
        super().__init__()
        self.on_loop = on_loop
        self.loop_thread: int | None = None  # set by the server as its loop starts
        self.probes = ThreadedTaskDispatcher()
        self.probes.set_thread_count(PROBE_THREADS)
        self.set_thread_count(threads)

    def add_task(self, task) -> None:
        """`task` is a channel whose next request is its first; route by that request."""
        requests = getattr(task, "requests", None)
        request = requests[0] if requests else None
        if getattr(request, "path", None) in PROBE_PATHS:
            self.probes.add_task(task)
        elif (self.on_loop is not None and threading.get_ident() == self.loop_thread
              and self.on_loop(request)):
            task.answer_on_loop = True  # the channel answers it once its read is done
        else:
            super().add_task(task)

    def shutdown(self, cancel_pending: bool = True, timeout: float = 5) -> bool:
        probes_done = self.probes.shutdown(cancel_pending, timeout)
        return super().shutdown(cancel_pending, timeout) and probes_done


def cpu_only_checks(offline: Callable[[str], bool]) -> Callable[[object], bool]:
    """The loop's share: POST /v1/check whose body names no account and whose Authorization
    header `offline` says verifies without the network."""

    def on_loop(request) -> bool:
        if request.path != "/v1/check" or request.command != "POST" or request.error:
            return False
        body = request.body_rcv
        if body is None or len(body) > LOOP_BODY_BYTES:
            return False
        raw = body.getbuf().get()  # a look: the app still reads the whole body
        if b"account_id" in raw or b"\\u" in raw:
            return False
        return offline(request.headers.get("AUTHORIZATION", ""))

    return on_loop
