"""Store: one Pony Database per instance, with its repositories.

    Store("sqlite:///abs/path/rolebook.db")        file (three or four slashes, always an
                                                     absolute path); parent dir created;
                                                     waits up to 30 s for another writer
    Store("sqlite://:sharedmemory:")                 in-memory, shared by threads (tests)
    Store("postgresql://user[:password]@host:port/dbname")   waits as long as `limits` allow
                                                     (storage/postgres.py)

Each Store defines its own entities on its own Database, so several databases can be
open in one process (tests use that). Constructing a Store brings the database's schema
to the latest version (storage/schema.py: under a lock, so replicas starting together
take turns) and refuses a database newer than this code (SchemaTooNew).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from pony.orm import Database, db_session

from rolebook.storage import schema
from rolebook.storage.account_cache import AccountCache
from rolebook.storage.accounts import Accounts
from rolebook.storage.audit import Audit
from rolebook.storage.base import ACCOUNTS_CHANNEL, Clock, utc_now
from rolebook.storage.entities import define_entities
from rolebook.storage.invitations import Invitations
from rolebook.storage.members import Members
from rolebook.storage.notify import Listener, listen_connector
from rolebook.storage.outbox import OutboxRepo
from rolebook.storage.policies import PolicyVersions
from rolebook.storage.postgres import LeanPGProvider, Limits, Probe
from rolebook.storage.users import Users

SQLITE_LOCK_TIMEOUT_SECONDS = 30.0
LISTEN_START_SECONDS = 5.0

log = logging.getLogger("rolebook.storage")


def bind_arguments(url: str, create: bool = True,
                   limits: Limits | None = None) -> dict[str, Any]:
    """Translate a database URL into `Database.bind` keyword arguments.

    Without `create`, a missing SQLite file is an error rather than a new empty database.
    Without `limits`, PostgreSQL waits are unbounded (`rolebook db upgrade`, migrations).
    """
    if url == "sqlite://:sharedmemory:":
        return {"provider": "sqlite", "filename": ":sharedmemory:"}
    if url.startswith("sqlite:///"):
        path = "/" + url[len("sqlite://"):].lstrip("/")
        if create:
            os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
        return {"provider": "sqlite", "filename": path, "create_db": create,
                "timeout": SQLITE_LOCK_TIMEOUT_SECONDS}
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres"):
        args: dict[str, Any] = {"provider": LeanPGProvider,
                                "host": parts.hostname or "127.0.0.1",
                                "port": parts.port or 5432,
                                "database": unquote(parts.path.lstrip("/")) or "postgres"}
        if limits is not None:
            args["limits"] = limits
        if parts.username:
            args["user"] = unquote(parts.username)
        if parts.password:
            args["password"] = unquote(parts.password)
        return args
    raise ValueError(f"unsupported database URL: {url!r}")


def open_database(url: str, create: bool = True, limits: Limits | None = None) -> Database:
    """A bound Database without entities: enough for the schema's raw SQL (`rolebook db`)."""
    db = Database()
    db.bind(**bind_arguments(url, create, limits))
    return db


def database_clock(db: Database) -> Clock:
    """The database server's time, in UTC: what decides (invitation expiry, rate-limit
    windows, mail leases) is then the same on every replica, whatever their clocks say.
    Inside a transaction it is the transaction's start (PostgreSQL's now()), so one change
    sees one instant; outside one it costs its own short session. SQLite has one host, whose
    clock is the database's."""
    def now() -> datetime:
        with db_session:
            return db.select("SELECT (now() AT TIME ZONE 'UTC')")[0]
    return now


class Store:
    """The storage facade the API wires in; repositories own their sessions."""

    def __init__(self, url: str, clock: Clock | None = None, cache: AccountCache | None = None,
                 limits: Limits | None = None) -> None:
        self.url = url
        self.limits = limits or Limits()
        self.db = open_database(url, limits=self.limits)
        define_entities(self.db)
        self._upgrade()
        self.db.generate_mapping(check_tables=True)  # every mapped column is there
        if clock is None:
            clock = database_clock(self.db) if self.db.provider.dialect == "PostgreSQL" else utc_now
        self.users = Users(self.db, clock, cache)
        self.accounts = Accounts(self.db, clock, cache)
        self.members = Members(self.db, clock, cache)
        self.invitations = Invitations(self.db, clock, cache)
        self.audit = Audit(self.db, clock, cache)
        self.outbox = OutboxRepo(self.db, clock, cache)
        self.policies = PolicyVersions(self.db, clock, cache)
        self.listener = self._follow_other_hosts(cache)
        self.probe = self._readiness_probe()

    def _readiness_probe(self) -> Probe | None:
        """On PostgreSQL, /readyz's own connection (see Probe); SQLite answers through Pony."""
        params = bind_arguments(self.url)
        if params.pop("provider") is not LeanPGProvider:
            return None
        return Probe(params, self.limits)

    def _upgrade(self) -> None:
        """Migrations may take, or wait for another replica's, longer than a statement may:
        on PostgreSQL they get a connection of their own without the timeouts."""
        found = schema.status(self.db)
        if found.too_new:
            raise schema.SchemaTooNew(found.version)
        if not found.pending:
            return
        if schema.dialect(self.db) == "sqlite":  # one file (or shared memory): this Database
            schema.upgrade(self.db)
            return
        migrating = open_database(self.url)
        try:
            schema.upgrade(migrating)
        finally:
            migrating.disconnect()

    def _follow_other_hosts(self, cache: AccountCache | None) -> Listener | None:
        """On PostgreSQL, renew the stamps of accounts changed through other hosts; the cache
        is trusted only while this listener is connected (see account_cache)."""
        connect = listen_connector(self.url, "account feed", self.limits) \
            if cache is not None else None
        if connect is None:
            return None
        cache.distrust()

        def changed(payloads: list[str]) -> None:
            for bad in (p for p in payloads if not _account_id(p)):
                log.warning("ignoring an unexpected notification on %s: %.200r",
                            ACCOUNTS_CHANNEL, bad)
            cache.changed(p for p in payloads if _account_id(p))

        listener = Listener(connect, ACCOUNTS_CHANNEL, "account", changed, cache.resync,
                            cache.distrust).start()
        listener.connected.wait(LISTEN_START_SECONDS)  # until then every read asks the database
        return listener

    def ping(self, timeout: float = 1.0) -> bool:
        """Readiness: can we run a query right now? On PostgreSQL within `timeout` seconds."""
        if self.probe is not None:
            return self.probe.ping(timeout)
        try:
            with db_session:
                self.db.select("SELECT 1")
            return True
        except Exception:
            return False

    def close(self) -> None:
        """Close this thread's pooled connection; other threads' close with their threads."""
        if self.listener is not None:
            self.listener.stop()
        if self.probe is not None:
            self.probe.close()
        self.db.disconnect()


def _account_id(payload: str) -> bool:
    return 0 < len(payload) <= 64 and payload.isprintable() and " " not in payload
