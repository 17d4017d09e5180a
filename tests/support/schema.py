
"""Databases as earlier builds left them, and plain looks into any database's catalog.

`previous_schema` is what a build before schema versions made: Pony's create_tables from
storage/entities.py, plus idx_rb_membership__account_role, which the builds before
that declared (composite_index(account, role)) and create_tables never dropped.
Catalog reads go through the DB-API driver, not Pony, so they see what is really there.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg2
from pony.orm import Database

from rolebook.storage import InvitationRules
from rolebook.storage.accounts import Accounts
from rolebook.storage.entities import define_entities
from rolebook.storage.invitations import Invitations
from rolebook.storage.schema_v1 import TABLES
from rolebook.storage.store import bind_arguments
from tests.support import postgres

OLD_INDEX = "idx_rb_membership__account_role"


LATER_TABLES = ("rb_policy_version", "rb_policy_activation")  # step 3
LATER_COLUMNS = (("rb_outbox", "claimed_by"),)  # step 4
ALL_TABLES = (*TABLES, *LATER_TABLES)


def previous_schema(url: str, released: bool = True) -> Database:
    """A database as the last build before schema versions made it, its entities mapped;
    with `released=False`, Pony's create_tables of today's entities (for comparison)."""
    db = Database()
    define_entities(db)
    db.bind(**bind_arguments(url))
    db.generate_mapping(create_tables=True)
    execute(url, f'CREATE INDEX "{OLD_INDEX}" ON "rb_membership" ("account", "role")')
    for table in LATER_TABLES if released else ():  # that build had none of these
        execute(url, f'DROP TABLE "{table}"')
    for table, column in LATER_COLUMNS if released else ():
        execute(url, f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
    return db


@dataclass(frozen=True)
class _Allow:
    allowed: bool = True
    rule: str = "test-allows"
    reason: str = "allowed"
    conflict: bool = False
    policy: str = "testpol"
    version: int = 1


def _allow(kind: str, action: str, role: str, attr: dict[str, Any]) -> _Allow:
    return _Allow()


def _message(invitation: dict[str, Any], token: str) -> tuple[str, str, str, str]:
    return invitation["email"], "Invited", f"token {token}", "<p>invited</p>"


def fill(db: Database, accounts: int = 3, members: int = 4, policy: str = "testpol") -> list[str]:
    """Rows in every table, written by the repositories; returns the account ids.

    Roles are Convert's (owner, edit, read), so a server with the shipped policies can
    answer for these accounts when `policy` is "convert".
    """
    clock = lambda: datetime(2030, 1, 1, 12, 0, 0)  # noqa: E731
    made, invitations = Accounts(db, clock), Invitations(db, clock)
    ids = []
    for a in range(accounts):
        account = made.create(f"owner{a}", f"owner{a}@example.com", name=f"Account {a}",
                              policy=policy, owner_role="owner", single_email_scope=True)
        for m in range(members):
            user = f"u{a}_{m}"
            _, token = invitations.create(account["id"], f"owner{a}", email=f"{user}@example.com",
                                          role="edit" if m % 2 else "read", first_name="First",
                                          decide=_allow, make_message=_message,
                                          rules=InvitationRules(3600, single_email_scope=True))
            invitations.accept(token, user, f"{user}@example.com",
                               single_email_scope=lambda account: True)
        invitations.create(account["id"], f"owner{a}", email=f"pending{a}@example.com", role="read",
                           last_name="Last", decide=_allow, make_message=_message,
                           rules=InvitationRules(3600, single_email_scope=True))
        ids.append(account["id"])
    return ids


def add_unfilled_column(url: str) -> None:
    """A table that does not match: rb_account gains a column no insert fills.

    NOT NULL on PostgreSQL; SQLite cannot add a NOT NULL column without a default, so
    there the same rule is a CHECK (SQLITE_CONSTRAINT_CHECK instead of _NOTNULL).
    """
    if url.startswith("sqlite:"):
        execute(url, "ALTER TABLE rb_account ADD COLUMN region TEXT CHECK (region IS NOT NULL)")
    else:
        execute(url, "ALTER TABLE rb_account ADD COLUMN region TEXT NOT NULL")


def connect(url: str) -> Any:
    if url.startswith("sqlite:///"):
        return sqlite3.connect(bind_arguments(url)["filename"])
    return psycopg2.connect(dbname=url.rsplit("/", 1)[1], **postgres.PG)


def execute(url: str, sql: str, args: tuple = ()) -> None:
    with closing(connect(url)) as conn:
        conn.cursor().execute(sql, args)
        conn.commit()


def query(url: str, sql: str, args: tuple = ()) -> list[tuple]:
    with closing(connect(url)) as conn:
        cursor = conn.cursor()
        cursor.execute(sql, args)
        return [tuple(row) for row in cursor.fetchall()]


def rows(url: str) -> dict[str, list[tuple]]:
    """Every row of every version-1 table, in a stable order, without later steps' columns."""
    found = {}
    for table in TABLES:
        with closing(connect(url)) as conn:
            cursor = conn.cursor()
            cursor.execute(f'SELECT * FROM "{table}"')
            keep = [i for i, column in enumerate(cursor.description)
                    if (table, column[0]) not in LATER_COLUMNS]
            found[table] = sorted((tuple(row[i] for i in keep) for row in cursor.fetchall()),
                                  key=repr)
    return found


def indexes(url: str, table: str) -> set[str]:
    if url.startswith("sqlite:"):
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = %s"
    return {name for (name,) in query(url, sql, (table,))}


def describe(url: str) -> dict[str, Any]:
    """Tables, columns, indexes and constraints of the rb_ tables, as the catalog has them."""
    if url.startswith("sqlite:"):
        out = {}
        for table in ALL_TABLES:
            index_list = query(url, f'PRAGMA index_list("{table}")')
            out[table] = {
                "columns": query(url, f'PRAGMA table_info("{table}")'),
                "indexes": sorted((name, unique, [c[2] for c in query(
                    url, f'PRAGMA index_info("{name}")')]) for _, name, unique, *_ in index_list),
                "foreign_keys": sorted(query(url, f'PRAGMA foreign_key_list("{table}")')),
                "autoincrement": "AUTOINCREMENT" in query(
                    url, "SELECT sql FROM sqlite_master WHERE name = ?", (table,))[0][0],
            }
        return out
    return {
        "columns": query(url, "SELECT table_name, column_name, ordinal_position, data_type, "
                         "is_nullable, column_default FROM information_schema.columns "
                         "WHERE table_schema = 'public' AND table_name = ANY(%s) "
                         "ORDER BY 1, 3", (list(ALL_TABLES),)),
        "indexes": query(url, "SELECT tablename, indexname, indexdef FROM pg_indexes "
                         "WHERE schemaname = 'public' AND tablename = ANY(%s) ORDER BY 1, 2",
                         (list(ALL_TABLES),)),
        "constraints": query(url, "SELECT t.relname, c.conname, pg_get_constraintdef(c.oid) "
                             "FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
                             "WHERE t.relname = ANY(%s) ORDER BY 1, 2", (list(ALL_TABLES),)),
    }
