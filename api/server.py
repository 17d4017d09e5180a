"""Serving: worker processes sharing one port, graceful stop on SIGTERM, reload on SIGHUP.

With several workers each process builds its own app (its own engine snapshot
and database connections) and then binds its own SO_REUSEPORT socket, so the
kernel spreads connections across processes and cores. No process holds
another's listening socket: when a worker dies, its socket leaves the port's
group with it. The parent (api/supervisor.py) holds the port with a bound,
non-listening socket, and starts, replaces and signals its children.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from pony.orm.dbapiprovider import DBException

from rolebook.api import metric_values, tracing
from rolebook.api.auth import IdentityError, Verifier
from rolebook.api.config import BY_NAME, Config, database_limits
from rolebook.api.decision_shipper import check_url
from rolebook.api.mail import from_url
from rolebook.api.policy_set import DirSource, PolicySet, source_for
from rolebook.api.request_lanes import cpu_only_checks
from rolebook.api.supervisor import Supervisor
from rolebook.api.worker_board import WorkerBoard, line, reload_here
from rolebook.engine import PolicyLoadError, Snapshot, policy_files
from rolebook.storage import Store
from rolebook.storage.schema import SchemaError

log = logging.getLogger("rolebook.server")
CONTROL_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
DRAIN_SECONDS = 30
BACKLOG = 1024
TIMEOUTS = ("db_connect_timeout", "db_statement_timeout", "db_network_timeout", "ready_timeout")


def bound_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    sock = bound_socket(host, port, reuse_port)
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


class StartupError(Exception):
    """A setting the service cannot start with; the message names the setting and why."""


class NoPolicies(StartupError):
    """A new user's first start, typically outside a checkout: say what to run."""

    def __init__(self, folder: str):
        super().__init__(f"no policy files in {folder} (expected <name>/v<N>.yaml): run "
                         f"`rolebook init {folder}` to write the example policies there, or "
                         f"name your policy folder with {_named('policy_dir')}")


def prepare(config: Config) -> Snapshot:
    """Fail before forking: policies valid, database reachable with its schema, key present.
    The checks that need no disk come first, so a refusal leaves nothing behind."""
    for name in TIMEOUTS:
        if not getattr(config, name) > 0:
            raise StartupError(f"{_named(name)} must be a number of seconds above 0, "
                               f"got {getattr(config, name)!r}")
    if config.server == "granian":
        from rolebook.api.granian_server import missing

        if problem := missing():
            raise StartupError(f"{_named('server')} granian: {problem}")
    from_folder = config.policy_source == "dir"
    if from_folder and not policy_files(config.policy_dir):
        raise NoPolicies(config.policy_dir)
    if from_folder:
        snapshot = PolicySet(DirSource(config.policy_dir, config.pins),
                             config.default_policy).snapshot
    try:
        from_url(config.effective_mail_url)
    except ValueError as exc:
        raise StartupError(f"{_named('mail_url')}: {exc}") from None
    if config.decision_log_url:
        try:
            check_url(config.decision_log_url)
        except ValueError as exc:
            raise StartupError(f"{_named('decision_log_url')}: {exc}") from None
    config.data_path.mkdir(parents=True, exist_ok=True)
    try:
        Verifier(config)  # the built-in key is made once; a provider's keys must be readable
    except IdentityError as exc:
        raise StartupError(str(exc)) from None
    url = config.effective_database_url
    try:
        # Brings the schema up to date under the lock; refuses a newer one.
        store = Store(url, limits=database_limits(config))
    except (ValueError, DBException, SchemaError) as exc:
        raise StartupError(f"{_named('database_url')} {_safe_url(url)}: "
                           f"{str(exc).strip()}") from None
    try:
        if not from_folder:  # the published versions, read once the database is known good
            snapshot = PolicySet(source_for(config, store), config.default_policy).snapshot
    finally:
        store.close()
    return snapshot


def _named(setting: str) -> str:
    """How an operator sets it, so the message says what to change."""
    return f"{BY_NAME[setting].flag} / {BY_NAME[setting].env}"


def announce(config: Config, port: int, snapshot: Snapshot) -> None:
    """The start-up line, written once the port is bound and before anything is answered."""
    policies = ", ".join(f"{p.ref} {p.digest}" for p in snapshot.all())
    source = "published in the database" if config.policy_source == "database" else \
        f"from folder {config.policy_dir}"
    log.info("rolebook serving on http://%s:%s (database %s; policies %s: %s)", config.host,
             port, _safe_url(config.effective_database_url), source, policies)


def run_worker(config: Config, listen: Callable[[], socket.socket], board: WorkerBoard) -> None:
    """Serve until SIGTERM or SIGINT, then drain. Expects the control signals blocked: threads
    started here inherit that, so signals reach the main thread, and SIGHUP the reloader."""
    from rolebook.api.app import build_services, create_app

    tracing.start()  # in the worker: its exporter thread must not be forked
    read_at = time.monotonic()
    services = replace(build_services(config), board=board)
    app = create_app(config, services)
    # Everything built so far (modules, compiled policies, the contract, ORM metadata) lives as
    # long as the process: out of the collector's sight, full collections no longer walk it.
    # Those walks were the 400 ms p99 at 50 checks a request (44 ms with it).
    gc.freeze()
    threading.Thread(target=_reload_on_sighup, args=(services, board), daemon=True,
                     name="rolebook-reload").start()
    board.post(line(services.policies.snapshot, read_at))

    def close():  # once requests have drained
        services.decisions.close()
        services.mailer.stop()
        services.policies.close()
        tracing.stop()
        metric_values.flush()  # last: closing the rest may still count

    if config.server == "granian":
        from rolebook.api import granian_server as http

        lanes = {}
    else:
        from rolebook.api import waitress_server as http

        lanes = {"on_loop": cpu_only_checks(services.verifier.offline)}
    # Listening only once ready: until then the kernel sends connections to the other workers.
    # SIGHUP stays blocked here and with the reloader; waitress unblocks the stop signals for
    # its handler, granian's worker waits for them with them blocked.
    http.serve(app, listen(), config, close, backlog=BACKLOG, drain_seconds=DRAIN_SECONDS,
               stop_signals=STOP_SIGNALS, **lanes)
    services.store.close()


def _reload_on_sighup(services, board: WorkerBoard) -> None:
    """Reload on each SIGHUP, in this thread rather than a handler: the loop thread keeps
    answering, and SIGHUPs that arrive during a reload are one more reload, not a nested one."""
    while True:
        signal.sigwait({signal.SIGHUP})
        try:
            board.post(reload_here(services))
        except Exception:  # the next SIGHUP must still be heard
            log.exception("policy reload failed")


def _safe_url(url: str) -> str:
    if "@" in url and ":" in url.split("@")[0].split("//")[-1]:
        scheme, rest = url.split("//", 1)
        return f"{scheme}//***@{rest.split('@', 1)[1]}"
    return url


def serve(config: Config) -> int:
    workers = config.effective_workers
    try:
        snapshot = prepare(config)
        if workers > 1:
            share_metrics_between_workers(config.data_path / "metrics")
        # Loaded once before forking, after the metrics mode is set (prometheus_client reads it
        # at import), so workers share the pages.
        import rolebook.api.app  # noqa: F401
    except PolicyLoadError as exc:
        for problem in exc.problems:
            print(f"rolebook: policy error: {problem}", file=sys.stderr)
        print("rolebook: refusing to start without a valid policy set", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"rolebook: cannot start: {exc}", file=sys.stderr)
        return 2
    try:
        if workers == 1:
            sock = listening_socket(config.host, config.port, False)
            announce(config, sock.getsockname()[1], snapshot)
            signal.pthread_sigmask(signal.SIG_BLOCK, CONTROL_SIGNALS)  # as in a forked worker
            run_worker(config, lambda: sock, WorkerBoard.fresh(config.data_path, os.getpid()))
            return 0
        return _supervise(config, workers, snapshot)
    except OSError as exc:
        print(f"rolebook: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 2


def share_metrics_between_workers(folder) -> None:
    """Worker processes write metrics to files that /metrics in any of them adds up."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def _supervise(config: Config, workers: int, snapshot: Snapshot) -> int:
    # Bound, never listening: it keeps the port while workers come and go, and with no worker
    # listening a connection is refused rather than left queued.
    reserve = bound_socket(config.host, config.port, True)
    port = reserve.getsockname()[1]
    announce(config, port, snapshot)
    board = WorkerBoard.fresh(config.data_path, os.getpid())

    def start(index: int) -> int:
        pid = os.fork()
        if pid == 0:
            reserve.close()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})  # the supervisor's
            _worker_process(index, lambda: run_worker(
                config, lambda: listening_socket(config.host, port, True), board))
        return pid

    log.info("%d worker processes on port %d", workers, port)
    return Supervisor(workers, start, board).run()


def _worker_process(index: int, work: Callable[[], None]) -> None:
    """A forked worker: serve, then leave through os._exit whatever happens, never by
    returning into the supervisor's loop (where it would fork workers of its own)."""
    code = 1
    try:
        work()
        code = 0
    except BaseException:
        with contextlib.suppress(BaseException):
            log.exception("worker %d failed", index)
    finally:
        for signum in CONTROL_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        with contextlib.suppress(BaseException):
            logging.shutdown()
        os._exit(code)
