"""The schema version kept in the database, and the runner that applies migrations.

`rb_schema_version` holds one row per applied step. A database without that table is
at version 0: empty, or made by a build before schema versions (Pony's create_tables);
step 1 creates what is missing, so both arrive at version 1.

`upgrade` runs every pending step in one transaction, so a failed step leaves the
database as it was. Replicas that start together must not race to create tables (Pony's
create_tables did: duplicate key in pg_type), so the transaction first takes a lock: on
PostgreSQL a transaction-level advisory lock (one replica migrates, the others wait and
then find nothing to do); on SQLite BEGIN IMMEDIATE, the database's single writer lock.
A database newer than this code is refused, never touched.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from hashlib import sha256

from pony.orm import Database, db_session

from rolebook.storage.base import utc_now
from rolebook.storage.errors import StorageError
from rolebook.storage.migrations import LATEST, STEPS, Step

log = logging.getLogger("rolebook.schema")
VERSION_TABLE = "rb_schema_version"
# PostgreSQL names an advisory lock by any signed 64-bit number; one derived from a phrase
# is unlikely to be another application's on the same database.
ADVISORY_LOCK_KEY = int.from_bytes(sha256(b"rolebook schema migrations").digest()[:8]) >> 1
CREATE_VERSION_TABLE = (f'CREATE TABLE IF NOT EXISTS "{VERSION_TABLE}" ('
                        '"version" INTEGER NOT NULL PRIMARY KEY, '
                        '"name" TEXT NOT NULL, '
                        '"applied_at" TIMESTAMP NOT NULL)')


class SchemaError(StorageError):
    """The database's schema is one this code cannot serve."""


class SchemaTooNew(SchemaError):
    def __init__(self, found: int, known: int = LATEST) -> None:
        super().__init__(f"the database schema is at version {found}, newer than this "
                         f"rolebook knows (version {known}); run a release that knows "
                         f"version {found}")
        self.found = found
        self.known = known


@dataclass(frozen=True)
class Applied:
    version: int
    name: str
    applied_at: datetime | str  # SQLite hands back text


@dataclass(frozen=True)
class Status:
    version: int  # 0: no version recorded
    latest: int
    applied: tuple[Applied, ...]
    pending: tuple[Step, ...]
    unversioned_tables: bool  # no version recorded, but tables of an earlier build exist

    @property
    def too_new(self) -> bool:
        return self.version > self.latest


def dialect(db: Database) -> str:
    return "postgres" if db.provider.dialect == "PostgreSQL" else "sqlite"


def _has_table(db: Database, name: str) -> bool:
    if dialect(db) == "postgres":
        sql = ("SELECT count(*) FROM information_schema.tables "
               "WHERE table_schema = current_schema() AND table_name = $name")
    else:
        sql = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $name"
    return db.select(sql, {"name": name})[0] > 0


def _applied(db: Database) -> tuple[Applied, ...]:
    if not _has_table(db, VERSION_TABLE):
        return ()
    rows = db.select(f'SELECT "version", "name", "applied_at" FROM "{VERSION_TABLE}" '
                     'ORDER BY "version"')
    return tuple(Applied(*row) for row in rows)


def _version(applied: tuple[Applied, ...]) -> int:
    return applied[-1].version if applied else 0


def status(db: Database) -> Status:
    """Read-only: what the database records and what this code would apply."""
    with db_session:
        applied = _applied(db)
        version = _version(applied)
        unversioned = not applied and _has_table(db, "rb_account")
    return Status(version, LATEST, applied, STEPS[version:], unversioned)


def upgrade(db: Database) -> tuple[Step, ...]:
    """Apply every pending step under the migration lock; return those this call applied."""
    found = status(db)  # without the lock: a database already current costs one read
    if found.too_new:
        raise SchemaTooNew(found.version)
    if not found.pending:
        return ()
    started = time.monotonic()
    with db_session(ddl=True):  # one transaction; on SQLite it begins IMMEDIATE
        kind = dialect(db)
        if kind == "postgres":
            db.select(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})")
        db.execute(CREATE_VERSION_TABLE)
        version = _version(_applied(db))  # again, now that no one else can migrate
        if version > LATEST:
            raise SchemaTooNew(version)
        pending = STEPS[version:]
        for step in pending:
            for sql in step.statements(kind):
                db.execute(sql)
            db.execute(f'INSERT INTO "{VERSION_TABLE}" ("version", "name", "applied_at") '
                       "VALUES ($version, $name, $at)",
                       {"version": step.version, "name": step.name, "at": utc_now()})
    for step in pending:
        log.info("schema: applied %d %s", step.version, step.name)
    if pending:
        log.info("schema: now at version %d (%.0f ms)", LATEST,
                 (time.monotonic() - started) * 1000)
    return pending

