"""Throw-away PostgreSQL databases on the machine's server (127.0.0.1:5432, trust auth).

Where no server answers, tests that need one are skipped with the reason, never silently.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import psycopg2
import pytest

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def admin_connection():
    try:
        conn = psycopg2.connect(dbname="postgres", connect_timeout=3, **PG)
    except psycopg2.Error as exc:
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}".strip())
    conn.autocommit = True
    return conn


@contextmanager
def throwaway_database(prefix: str = "rolebook_test") -> Iterator[str]:
    """Create a database, yield its name, and drop it (with any leftover connections)."""
    admin = admin_connection()
    name = f"{prefix}_{secrets.token_hex(6)}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def throwaway_for(backend: str, prefix: str) -> AbstractContextManager[str | None]:
    """A throw-away database's name on "postgres"; None (SQLite, no server needed) otherwise."""
    return throwaway_database(prefix) if backend == "postgres" else nullcontext(None)


def url(name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def connect(name: str):
    """An autocommit connection to test database `name`, beside the code under test."""
    conn = psycopg2.connect(dbname=name, **PG)
    conn.autocommit = True
    return conn


def reset_schema(name: str) -> None:
    """Empty a test database between tests: end leftover connections, recreate `public`."""
    conn = connect(name)
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    conn.close()
