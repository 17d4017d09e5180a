"""Health probes on threads of their own, so they never queue behind requests.

Waitress hands every request to one pool of request threads. While the database hangs, each of
those may be blocked for up to the database timeouts; a liveness probe queued behind them would
time out and get a healthy process restarted. This dispatcher is waitress's own, plus a second
small pool that serves only /healthz and /readyz (/healthz touches no database; /readyz waits at
most its own --ready-timeout). Waitress takes a dispatcher as `create_server(_dispatcher=...)`.
"""

from __future__ import annotations

from waitress.task import ThreadedTaskDispatcher

PROBE_PATHS = frozenset({"/healthz", "/readyz"})
PROBE_THREADS = 2  # a /healthz is not held up by one /readyz waiting for the database


class ProbeLaneDispatcher(ThreadedTaskDispatcher):
    def __init__(self, threads: int) -> None:
        super().__init__()
        self.probes = ThreadedTaskDispatcher()
        self.probes.set_thread_count(PROBE_THREADS)
        self.set_thread_count(threads)

    def add_task(self, task) -> None:
        """`task` is a channel whose next request is its first; route by that request's path."""
        requests = getattr(task, "requests", None)
        if requests and getattr(requests[0], "path", None) in PROBE_PATHS:
            self.probes.add_task(task)
        else:
            super().add_task(task)

    def shutdown(self, cancel_pending: bool = True, timeout: float = 5) -> bool:
        probes_done = self.probes.shutdown(cancel_pending, timeout)
        return super().shutdown(cancel_pending, timeout) and probes_done
