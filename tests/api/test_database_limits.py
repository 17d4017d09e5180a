"""The database timeouts as settings, and the probes' own threads.

Protects: the timeout settings reach PostgreSQL as libpq keywords (server-side timeouts, TCP
keepalives, tcp_user_timeout) from flags and environment alike; a timeout that is not above
zero refuses to start, naming the setting; a statement past its timeout ends on the server,
leaves the connection usable and is a 503 saying so; /healthz and /readyz are served while
every request thread is busy (tests/e2e/test_database_hangs.py: against a frozen PostgreSQL).
"""

from __future__ import annotations

import argparse
import threading
from dataclasses import replace

import psycopg2
import pytest
from pony.orm.dbapiprovider import OperationalError

from rolebook.api.config import Config, add_arguments, database_limits, from_arguments
from rolebook.api.problems import _database_reason
from rolebook.api.request_lanes import LaneDispatcher
from rolebook.api.server import StartupError, prepare
from rolebook.storage import postgres
from rolebook.storage.postgres import Limits
from tests.support.postgres import PG, admin_connection


def test_default_limits_as_libpq_keywords():
    assert database_limits(Config()) == Limits(3.0, 5.0, 10.0)
    assert Limits().connect_arguments() == {
        "connect_timeout": 3, "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
        "keepalives_count": 3, "tcp_user_timeout": 10000,
        "options": "-c statement_timeout=5000 -c idle_in_transaction_session_timeout=10000"}
    assert Limits(None, None, None).connect_arguments() == {}


def test_timeouts_from_flags_and_environment():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--db-statement-timeout", "2.5", "--ready-timeout", "0.5"])
    config = from_arguments(args, {"ROLEBOOK_DB_CONNECT_TIMEOUT": "1.5",
                                   "ROLEBOOK_DB_STATEMENT_TIMEOUT": "9"})
    assert database_limits(config) == Limits(1.5, 2.5, 10.0)  # the flag wins
    assert config.ready_timeout == 0.5
    # libpq counts whole seconds from 2 up; the client-side bound keeps the exact value.
    assert database_limits(config).connect_arguments()["connect_timeout"] == 2


@pytest.mark.parametrize("name", ["db_connect_timeout", "db_statement_timeout",
                                  "db_network_timeout", "ready_timeout"])
def test_a_timeout_not_above_zero_refuses_to_start(tmp_path, name):
    config = replace(Config(data_dir=str(tmp_path)), **{name: 0.0})
    with pytest.raises(StartupError) as refused:
        prepare(config)
    flag = "--" + name.replace("_", "-")
    assert flag in str(refused.value) and f"ROLEBOOK_{name.upper()}" in str(refused.value)
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_a_statement_past_its_timeout_fails_and_leaves_the_connection_usable():
    admin_connection().close()  # skips, saying why, without a server
    conn = postgres.connect({**PG, "dbname": "postgres"}, Limits(statement_seconds=0.2))
    try:
        with pytest.raises(psycopg2.errors.QueryCanceled) as cancelled, conn.cursor() as cur:
            cur.execute("SELECT pg_sleep(2)")
        assert "statement timeout" in _database_reason(OperationalError(cancelled.value))
        conn.rollback()
        with conn.cursor() as cur:  # the server ended the statement, not the connection
            cur.execute("SELECT 1")
            assert cur.fetchall() == [(1,)]
    finally:
        conn.close()


class Channel:
    """What the dispatcher sees of a waitress channel: its queued requests, then service()."""

    def __init__(self, path: str, work=lambda: None):
        self.requests = [type("Request", (), {"path": path})()]
        self.work, self.done = work, threading.Event()

    def service(self):
        self.work()
        self.done.set()


def test_probes_are_served_while_every_request_thread_is_busy():
    dispatcher = LaneDispatcher(threads=2)
    release = threading.Event()
    try:
        busy = [Channel("/v1/accounts", lambda: release.wait(10)) for _ in range(3)]
        for channel in busy:
            dispatcher.add_task(channel)
        health, ready = Channel("/healthz"), Channel("/readyz")
        dispatcher.add_task(health)
        dispatcher.add_task(ready)
        assert health.done.wait(5) and ready.done.wait(5)
        assert not any(c.done.is_set() for c in busy)  # the request threads were all held
        release.set()
        assert all(c.done.wait(5) for c in busy)
    finally:
        release.set()
        assert dispatcher.shutdown(timeout=5)
