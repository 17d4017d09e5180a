"""`rolebook serve` on waitress (the default): one worker's HTTP layer and its graceful stop."""

from __future__ import annotations

import _thread
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable

from waitress.channel import HTTPChannel
from waitress.server import create_server

from rolebook.api.request_lanes import LaneDispatcher
from rolebook.api.server_errors import ProblemChannel

log = logging.getLogger("rolebook.server")
# A connection accepted while stopping is waited for this long to send its request.
FIRST_REQUEST_SECONDS = 2.0


def serve(app, sock: socket.socket, config, close: Callable[[], None], *, backlog: int,
          drain_seconds: float, stop_signals, on_loop=None) -> None:
    """Serve `app` on `sock` until SIGTERM or SIGINT, then drain (at most `drain_seconds`)
    and call `close`. Requests `on_loop(request)` accepts are answered on the loop thread."""
    # The probes' own threads: /healthz answers while every request thread waits on the database.
    dispatcher = LaneDispatcher(config.effective_threads, on_loop)
    server = create_server(app, sockets=[sock], threads=config.effective_threads,
                           _dispatcher=dispatcher,
                           max_request_body_size=config.max_body_bytes,
                           ident="rolebook", clear_untrusted_proxy_headers=True)
    server.channel_class = ProblemChannel  # waitress's own errors as problem+json

    def drain():
        # The interrupt below re-enters on_term, which must have finished starting this
        # thread first: an exception inside Thread.start() breaks its locks.
        handed_over.wait()
        server.trigger.pull_trigger(close_listener)
        deadline = time.monotonic() + drain_seconds
        while time.monotonic() < deadline and (not closed.is_set() or _busy(server)):
            time.sleep(0.02)
        close()
        drained.set()
        _thread.interrupt_main()  # runs on_term in the main thread, which leaves server.run()

    handed_over, closed, drained = (threading.Event() for _ in range(3))
    # Taken once, never released: a non-blocking acquire is a test-and-set no signal can split.
    # on_term may itself be interrupted by the next signal, and setting an Event there could
    # leave the nested call waiting forever for that Event's lock, held by the call it
    # interrupted (which happened to granian's worker, api/granian_server.py).
    draining, stopping = threading.Lock(), threading.Lock()

    def close_listener():  # in the loop thread
        try:
            _stop_listening(server, backlog)
        finally:
            closed.set()

    def on_term(signum, frame):
        if drained.is_set():
            # Once: the same signal from the group and from the supervisor may both land after
            # the drain, and a second interrupt would escape run() or the cleanup after it.
            if stopping.acquire(blocking=False):
                raise KeyboardInterrupt  # waitress's run() stops its loop on this
            return
        # Once only: a worker may hear SIGTERM or Ctrl-C's SIGINT both from its process group
        # and from the supervisor.
        if not draining.acquire(blocking=False):
            return
        # Stop selecting the listening socket now; drain() has the loop thread take what the
        # kernel already queued and close it (closing it here, under a running select, is EBADF).
        log.info("%s: no new connections; finishing requests in flight",
                 signal.Signals(signum).name)
        server.accepting = False
        threading.Thread(target=drain, daemon=True).start()
        handed_over.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
    dispatcher.loop_thread = threading.get_ident()
    server.run()
    for signum in stop_signals:
        signal.signal(signum, signal.SIG_IGN)  # leaving already; a late signal changes nothing


def _stop_listening(server, backlog: int) -> None:
    """Take every connection the kernel has already completed, then close the socket: those
    get their answers, later ones are refused (a load balancer then tries another replica).

    A connection the kernel completes between the last accept and the close is reset by the
    close; TCP has no way to stop a listener completing handshakes short of closing it. So
    the accepts are bare syscalls, the close follows the last one at once, and the channels
    for what was taken are made after it, keeping that window to microseconds.
    """
    sock = server.socket
    server.del_channel()  # out of the loop's map; the socket stays open until below
    taken = []
    try:
        while len(taken) < backlog:
            try:
                taken.append(sock.accept())
            except BlockingIOError:
                break  # the queue is empty
            except ConnectionAbortedError:
                continue  # the client gave up while queued
    finally:
        sock.close()
    for conn, addr in taken:
        try:
            server.set_socket_options(conn)
        except OSError:  # the client is already gone
            conn.close()
            continue
        server.channel_class(server, conn, server.fix_addr(addr), server.adj, map=server._map)


def _busy(server) -> bool:
    """Work still owed: requests running, queued, half received or half answered, or a
    connection accepted moments ago whose first request has not arrived yet."""
    dispatcher = server.task_dispatcher
    if dispatcher.active_count or dispatcher.queue:
        return True
    now = time.time()
    for channel in list(server._map.values()):
        if not isinstance(channel, HTTPChannel):
            continue
        if channel.total_outbufs_len or channel.requests or channel.request is not None:
            return True
        silent = channel.last_activity == channel.creation_time
        if silent and now - channel.creation_time < FIRST_REQUEST_SECONDS:
            return True
    return False
