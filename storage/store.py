"""Store: one Pony Database per instance, with its repositories.

    Store("sqlite:///abs/path/rolebook.db")        file (three or four slashes, always an
                                                     absolute path); parent dir created;
                                                     waits up to 30 s for another writer
    Store("sqlite://:sharedmemory:")                 in-memory, shared by threads (tests)
    Store("postgresql://user[:password]@host:port/dbname")

Each Store defines its own entities on its own Database, so several databases can be
open in one process (tests use that). Constructing a Store brings the database's schema
to the latest version (storage/schema.py: under a lock, so replicas starting together
take turns) and refuses a database newer than this code (SchemaTooNew).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit

from pony.orm import Database, db_session

from rolebook.storage import schema
from rolebook.storage.account_cache import AccountCache
from rolebook.storage.accounts import Accounts
from rolebook.storage.audit import Audit
from rolebook.storage.base import Clock, utc_now
from rolebook.storage.entities import define_entities
from rolebook.storage.invitations import Invitations
from rolebook.storage.members import Members
from rolebook.storage.outbox import OutboxRepo
from rolebook.storage.policies import PolicyVersions
from rolebook.storage.postgres import LeanPGProvider
from rolebook.storage.users import Users

SQLITE_LOCK_TIMEOUT_SECONDS = 30.0


def bind_arguments(url: str, create: bool = True) -> dict[str, Any]:
    """Translate a database URL into `Database.bind` keyword arguments.

    Without `create`, a missing SQLite file is an error rather than a new empty database.
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
        if parts.username:
            args["user"] = unquote(parts.username)
        if parts.password:
            args["password"] = unquote(parts.password)
        return args
    raise ValueError(f"unsupported database URL: {url!r}")


def open_database(url: str, create: bool = True) -> Database:
    """A bound Database without entities: enough for the schema's raw SQL (`rolebook db`)."""
    db = Database()
    db.bind(**bind_arguments(url, create))
    return db


class Store:
    """The storage facade the API wires in; repositories own their sessions."""

    def __init__(self, url: str, clock: Clock = utc_now, cache: AccountCache | None = None) -> None:
        self.url = url
        self.db = open_database(url)
        define_entities(self.db)
        schema.upgrade(self.db)
        self.db.generate_mapping(check_tables=True)  # every mapped column is there
        self.users = Users(self.db, clock, cache)
        self.accounts = Accounts(self.db, clock, cache)
        self.members = Members(self.db, clock, cache)
        self.invitations = Invitations(self.db, clock, cache)
        self.audit = Audit(self.db, clock, cache)
        self.outbox = OutboxRepo(self.db, clock, cache)
        self.policies = PolicyVersions(self.db, clock, cache)

    def ping(self) -> bool:
        """Readiness: can we run a query right now?"""
        try:
            with db_session:
                self.db.select("SELECT 1")
            return True
        except Exception:
            return False

    def close(self) -> None:
        """Close this thread's pooled connection; other threads' close with their threads."""
        self.db.disconnect()
