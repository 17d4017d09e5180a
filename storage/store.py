"""Store: one Pony Database per instance, with its repositories.

    Store("sqlite:///abs/path/rolebook.db")        file (three or four slashes, always an
                                                     absolute path); parent dir created;
                                                     waits up to 30 s for another writer
    Store("sqlite://:sharedmemory:")                 in-memory, shared by threads (tests)
    Store("postgresql://user[:password]@host:port/dbname")

Each Store defines its own entities on its own Database, so several databases can be
open in one process (tests use that). Tables are created on first start.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit

from pony.orm import Database, db_session

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


def bind_arguments(url: str) -> dict[str, Any]:
    """Translate a database URL into `Database.bind` keyword arguments."""
    if url == "sqlite://:sharedmemory:":
        return {"provider": "sqlite", "filename": ":sharedmemory:"}
    if url.startswith("sqlite:///"):
        path = "/" + url[len("sqlite://"):].lstrip("/")
        os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
        return {"provider": "sqlite", "filename": path, "create_db": True,
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


class Store:
    """The storage facade the API wires in; repositories own their sessions."""

    def __init__(self, url: str, clock: Clock = utc_now, cache: AccountCache | None = None) -> None:
        self.url = url
        self.db = Database()
        define_entities(self.db)
        self.db.bind(**bind_arguments(url))
        self.db.generate_mapping(create_tables=True)
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
