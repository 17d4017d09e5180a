"""PostgreSQL connections that never keep a caller waiting past a bound, and Pony's provider
without a round trip at the end of every session.

Bounds (`Limits`): the server ends a statement after `statement_timeout` and a transaction left
idle after twice that; TCP keepalives and `tcp_user_timeout` notice a dead peer or a partition
(unacknowledged data) within `network_seconds`. None of those helps when the server is alive at
the TCP level but does not answer (a stopped or overloaded postmaster, a hung storage volume): its
kernel still acknowledges every packet and the server's own timers do not run. So every
connection also waits client-side, through psycopg2's wait callback (its documented hook for
coroutine libraries; libpq has no client-side query timeout): a connection attempt at most
`connect_seconds`, an answer at most the statement timeout plus `ANSWER_GRACE_SECONDS` (so a live
server's statement_timeout, which leaves the connection usable, always comes first). A wait that
runs out raises DatabaseTimeout, and psycopg2 closes that connection.

The callback is process-wide (psycopg2 has one), so once a bounded connection is made every
psycopg2 connection of the process is polled by it; connections not made here keep their libpq
connect_timeout and otherwise wait unbounded, as before.

Pony's pool sends `DISCARD ALL` whenever a db_session ends, which doubles the cost of the
one-query reads on the request path (role look-ups). Storage keeps no session state on a
connection (no SET, temporary tables or prepared statements), so rolling back whatever is still
open is all a returned connection needs; psycopg2 skips that rollback when no transaction is open.
"""

from __future__ import annotations

import math
import select
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg2
from pony.orm.dbproviders.postgres import PGPool, PGProvider
from psycopg2 import extensions

ANSWER_GRACE_SECONDS = 1.0
KEEPALIVE_PROBES = 3


class DatabaseTimeout(psycopg2.DatabaseError):
    """PostgreSQL did not answer in time. Not an OperationalError on purpose: Pony retries those
    once on a new connection, which would double the wait on a server that hangs."""


@dataclass(frozen=True)
class Limits:
    """How long PostgreSQL may keep a caller waiting; None leaves that wait unbounded."""

    connect_seconds: float | None = 3.0
    statement_seconds: float | None = 5.0
    network_seconds: float | None = 10.0

    @property
    def answer_seconds(self) -> float | None:
        if self.statement_seconds is None:
            return None
        return self.statement_seconds + ANSWER_GRACE_SECONDS

    def connect_arguments(self) -> dict[str, Any]:
        """libpq keywords: the server-side timeouts and the TCP settings."""
        args: dict[str, Any] = {}
        if self.connect_seconds is not None:  # libpq's own bound, for blocking connects
            args["connect_timeout"] = max(2, math.ceil(self.connect_seconds))
        if self.network_seconds is not None:
            # Keepalives while idle: first probe after half the time, then KEEPALIVE_PROBES
            # probes over the other half; tcp_user_timeout for data that is never acknowledged.
            half = max(1, round(self.network_seconds / 2))
            args.update(keepalives=1, keepalives_idle=half,
                        keepalives_interval=max(1, round(half / KEEPALIVE_PROBES)),
                        keepalives_count=KEEPALIVE_PROBES,
                        tcp_user_timeout=round(self.network_seconds * 1000))
        if self.statement_seconds is not None:
            ms = round(self.statement_seconds * 1000)
            args["options"] = (f"-c statement_timeout={ms} "
                               f"-c idle_in_transaction_session_timeout={2 * ms}")
        return args


class BoundedConnection(extensions.connection):
    """A psycopg2 connection that carries its own client-side bounds for `_wait`."""

    def __init__(self, dsn: str, *args: Any, connect_seconds: float | None = None,
                 answer_seconds: float | None = None, **kwargs: Any) -> None:
        # Set before connecting: `_wait` reads them during the connection attempt itself.
        self.connect_seconds = connect_seconds
        self.answer_seconds = answer_seconds
        super().__init__(dsn, *args, **kwargs)


def connect(params: dict[str, Any], limits: Limits, **extra: Any) -> BoundedConnection:
    """A psycopg2 connection to `params` (host, port, database, user, ...) under `limits`."""
    if extensions.get_wait_callback() is not _wait:
        extensions.set_wait_callback(_wait)

    def factory(dsn: str, *args: Any, **kwargs: Any) -> BoundedConnection:
        return BoundedConnection(dsn, *args, connect_seconds=limits.connect_seconds,
                                 answer_seconds=limits.answer_seconds, **kwargs)

    return psycopg2.connect(connection_factory=factory,
                            **{**params, **limits.connect_arguments(), **extra})


def _wait(conn: Any) -> None:
    """psycopg2's wait callback: poll the connection until done, within its bound."""
    connecting = conn.status == extensions.STATUS_SETUP
    if isinstance(conn, BoundedConnection):
        seconds = conn.connect_seconds if connecting else conn.answer_seconds
    else:  # another psycopg2 user's connection: libpq's own connect_timeout, as when blocking
        timeout = extensions.parse_dsn(conn.dsn).get("connect_timeout") if connecting else None
        seconds = max(2, int(timeout)) if timeout and int(timeout) > 0 else None
    deadline = None if seconds is None else time.monotonic() + seconds
    poller = select.poll()
    while True:
        state = conn.poll()
        if state == extensions.POLL_OK:
            return
        poller.register(conn.fileno(), select.POLLIN if state == extensions.POLL_READ
                        else select.POLLOUT)
        left_ms = None if deadline is None else max(0.0, deadline - time.monotonic()) * 1000
        if not poller.poll(left_ms):  # only a deadline ends a poll without events
            what = "connect to" if connecting else "get an answer from"
            raise DatabaseTimeout(f"could not {what} PostgreSQL within {seconds:g} s")


class Probe:
    """Readiness: one connection of its own, so a probe never waits behind requests for a
    connection and is bounded by its own timeout, not the statement timeout."""

    def __init__(self, params: dict[str, Any], limits: Limits) -> None:
        self.params, self.limits = params, limits
        self.lock = threading.Lock()
        self.conn: BoundedConnection | None = None

    def ping(self, timeout: float) -> bool:
        """True if PostgreSQL answers `SELECT 1` within `timeout` seconds (one attempt)."""
        deadline = time.monotonic() + timeout
        if not self.lock.acquire(timeout=timeout):  # another probe is still waiting
            return False
        try:
            if self.conn is None or self.conn.closed:
                self.conn = None
                limits = Limits(deadline - time.monotonic(), self.limits.statement_seconds,
                                self.limits.network_seconds)
                self.conn = connect(self.params, limits, application_name="rolebook readiness")
                self.conn.autocommit = True
            self.conn.answer_seconds = max(0.001, deadline - time.monotonic())
            with self.conn.cursor() as cur:
                cur.execute("SELECT 1")
            return True
        except Exception:  # any failure is "not ready", never an error of /readyz itself
            self._drop()
            return False
        finally:
            self.lock.release()

    def close(self) -> None:
        with self.lock:
            self._drop()

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class LeanPool(PGPool):
    def __init__(self, dbapi_module: Any, *args: Any, limits: Limits | None = None,
                 **kwargs: Any) -> None:
        super().__init__(dbapi_module, *args, **kwargs)
        self.limits = limits or Limits(None, None, None)

    def connect(self) -> tuple[Any, bool]:
        if self.con is not None and self.con.closed:  # closed by a wait that ran out
            self.con = None
        return super().connect()

    def _connect(self) -> None:
        self.con = connect(self.kwargs, self.limits, client_encoding="UTF8")

    def release(self, con: Any) -> None:
        assert con is self.con
        try:
            con.rollback()
        except BaseException:
            self.drop(con)
            raise


class LeanPGProvider(PGProvider):
    def get_pool(self, *args: Any, **kwargs: Any) -> LeanPool:
        return LeanPool(self.dbapi_module, *args, **kwargs)
