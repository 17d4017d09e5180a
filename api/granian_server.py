"""`rolebook serve --server granian`: granian's Rust HTTP/1.1 in each worker instead of waitress.

Only the HTTP layer changes. Our supervisor (api/supervisor.py) still forks, replaces and signals
the workers; each worker still builds its app, binds its own SO_REUSEPORT socket once ready,
reloads on SIGHUP and shares /metrics; so those guarantees are the same code for both servers.
Granian's own multi-process runner would replace all of that (a SIGHUP there respawns
processes, so an invalid policy could not be refused while the old one keeps serving). Granian
has no public call that serves one worker on a socket we made, so this uses the worker class
that runner uses (granian/server/mp.py, `_spawn_wsgi_worker`); the extra pins the versions it
was written against (pyproject.toml), and tests/e2e run the server guarantees against it.

Measured with bench/ (README, Benchmarks): the same app serves more of waitress's requests a
second at 32 connections (1.8 to 2.5 times over the runs kept before waitress answered checks
on its I/O thread, 1.5 to 1.6 times since), because parsing and writing HTTP no longer take the
GIL.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable

log = logging.getLogger("rolebook.server")
EXTRA = "pip install 'rolebook[granian]'"
# Connections a worker takes before it stops accepting (granian's backpressure): beyond it the
# kernel queues them, so a busy worker leaves new ones to its siblings.
BACKPRESSURE = 128
IDLE_THREAD_SECONDS = 30
RUNTIME_BLOCKING_THREADS = 512  # granian's default: Rust's pool for blocking I/O, made lazily


def missing() -> str | None:
    """Why `--server granian` cannot run here, or None."""
    try:
        from granian._granian import SocketHolder, WorkerSignal, WSGIWorker  # noqa: F401
    except ImportError:
        return f"granian is not installed: {EXTRA}"
    return None


def serve(app, sock: socket.socket, config, close: Callable[[], None], *, backlog: int,
          drain_seconds: float, stop_signals) -> None:
    """Serve `app` on `sock` until SIGTERM or SIGINT, then let requests in flight finish (at
    most `drain_seconds`) and call `close`. Expects the control signals blocked, as
    run_worker does: granian's threads start here and inherit that, and this thread waits for
    them."""
    from granian._futures import _new_cbscheduler
    from granian._granian import SocketHolder, WorkerSignal, WSGIWorker
    from granian._loops import loops
    from granian.wsgi import _callback_wrapper

    stopping = WorkerSignal()
    drained = threading.Event()
    stopping.add_cb(drained.set)  # granian calls it once every connection is done
    ssl_off = (False, None, None, None, "tls1.3", None, [], False)
    # Granian closes the descriptor it is given when it stops accepting: it gets its own copy,
    # and ours is closed at SIGTERM, so that new connections are refused at once (a load
    # balancer then tries another replica) rather than queued behind the drain.
    listener = SocketHolder(os.dup(sock.fileno()), False, backlog)
    worker = WSGIWorker(
        0, (None, listener), None, 1, RUNTIME_BLOCKING_THREADS, config.effective_threads,
        IDLE_THREAD_SECONDS, BACKPRESSURE,
        "1", None, None, None, *ssl_off, (None, None))
    loop = loops.get("asyncio")  # WSGI calls run on granian's threads; this loop never runs
    wsgi = _callback_wrapper(app, {"url_path_prefix": None}, None)
    worker.serve_mtr(_new_cbscheduler(loop, wsgi, impl_asyncio=True), loop, stopping)

    # Waited for synchronously, as the supervisor does (still blocked since the fork, in every
    # thread): a handler that set an Event could be interrupted inside that Event's lock by the
    # second signal (the group's and the supervisor's both arrive), and the nested handler then
    # waited for the lock forever; one worker of three hung that way in a full test run.
    signum = signal.sigwait(stop_signals)
    log.info("%s: no new connections; finishing requests in flight",
             signal.Signals(signum).name)
    # Granian stops accepting and finishes every request it has received; a connection whose
    # request is still arriving is closed (waitress waits for it: the one difference,
    # tests/e2e/test_rolling_restart.py). Shutting the socket down first, to give such requests
    # time, leaves granian's accept loop spinning and its stop never completing.
    stopping.set()
    sock.close()
    if not drained.wait(drain_seconds):
        log.warning("requests still open after %.0f s; leaving anyway", drain_seconds)
    for stop in stop_signals:
        signal.signal(stop, signal.SIG_IGN)  # a second one still pending is dropped
    close()
