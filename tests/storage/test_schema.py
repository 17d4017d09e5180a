"""Schema versions and migrations, on SQLite and on PostgreSQL.

Protects: a database an earlier build made (no version table, the old redundant index)
is upgraded with every row kept and that index gone; a fresh database migrated to the
latest version is exactly what storage/entities.py maps (so a change to entities.py
needs its migration step); steps are numbered without gaps and each is recorded once;
a newer database is refused, naming both versions, and left untouched; a step that
fails leaves the database as it was; and replicas that start together on an empty
database (real separate processes) all come up, one migrating while the others wait.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from pony.orm.dbapiprovider import DBException

from rolebook.storage import Store, schema
from rolebook.storage.migrations import LATEST, STEPS
from rolebook.storage.store import open_database
from tests.support import postgres
from tests.support.live import REPO
from tests.support.schema import (
    OLD_INDEX,
    describe,
    execute,
    fill,
    indexes,
    previous_schema,
    query,
    rows,
)

RECORDED = 'SELECT "version", "name" FROM "rb_schema_version" ORDER BY 1'


def test_steps_are_numbered_from_one_without_gaps():
    assert [step.version for step in STEPS] == list(range(1, len(STEPS) + 1))
    assert LATEST == len(STEPS) >= 2
    assert len({step.name for step in STEPS}) == len(STEPS)


def test_an_earlier_builds_database_keeps_every_row_and_loses_the_old_index(database_url):
    legacy = previous_schema(database_url)
    account_ids = fill(legacy)
    legacy.disconnect()
    before = rows(database_url)
    assert all(before.values()), {table: len(found) for table, found in before.items()}
    assert OLD_INDEX in indexes(database_url, "rb_membership")

    found = schema.status(open_database(database_url))
    assert (found.version, found.unversioned_tables) == (0, True)
    assert [step.version for step in found.pending] == list(range(1, LATEST + 1))

    store = Store(database_url)
    try:
        assert rows(database_url) == before
        assert OLD_INDEX not in indexes(database_url, "rb_membership")
        assert "idx_rb_membership__account_role_user" in indexes(database_url, "rb_membership")
        assert query(database_url, RECORDED) == [(s.version, s.name) for s in STEPS]
        for account_id in account_ids:  # and the code reads them back
            members, _ = store.members.list(account_id, 100)
            assert len(members) == 5
    finally:
        store.close()


def test_the_latest_schema_is_what_the_entities_map(database_url, backend):
    Store(database_url).close()
    migrated = describe(database_url)
    if backend == "sqlite":
        other = database_url.replace("rolebook.db", "created.db")
    else:
        postgres.reset_schema(database_url.rsplit("/", 1)[1])
        other = database_url
    created = previous_schema(other, released=False)  # create_tables, less the old index:
    created.disconnect()
    execute(other, f'DROP INDEX "{OLD_INDEX}"')
    assert describe(other) == migrated


def test_an_empty_database_gets_every_step_once(database_url):
    Store(database_url).close()
    Store(database_url).close()
    assert query(database_url, RECORDED) == [(s.version, s.name) for s in STEPS]
    assert schema.upgrade(open_database(database_url)) == ()


def test_a_newer_database_is_refused_naming_both_versions(database_url):
    Store(database_url).close()
    execute(database_url, f"INSERT INTO rb_schema_version VALUES ({LATEST + 1}, "
            "'from-the-future', CURRENT_TIMESTAMP)")
    before = describe(database_url)
    with pytest.raises(schema.SchemaTooNew) as refused:
        Store(database_url)
    message = str(refused.value)
    assert f"version {LATEST + 1}" in message and f"version {LATEST})" in message
    with pytest.raises(schema.SchemaTooNew):
        schema.upgrade(open_database(database_url))
    assert describe(database_url) == before


@pytest.mark.postgres
def test_a_failing_step_changes_nothing(pg_database):
    """Step 2 cannot drop an "index" that is a table: steps 1 and 2 roll back together."""
    postgres.reset_schema(pg_database)
    url = postgres.url(pg_database)
    execute(url, f'CREATE TABLE "{OLD_INDEX}" (x INTEGER)')
    with pytest.raises(DBException, match="is not an index"):
        Store(url)
    tables = query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert tables == [(OLD_INDEX,)]


START_TOGETHER = """
import sys
from rolebook.storage import Store
print("ready", flush=True)
sys.stdin.readline()
Store(sys.argv[1]).close()
"""


def _start_together(url: str, count: int) -> list[subprocess.CompletedProcess]:
    """`count` real processes construct a Store at the same moment (after their imports)."""
    procs = [subprocess.Popen([sys.executable, "-c", START_TOGETHER, url], cwd=REPO,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(count)]
    for proc in procs:
        assert proc.stdout.readline() == "ready\n"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def test_replicas_starting_together_on_an_empty_database_all_come_up(database_url, backend):
    for pair in range(10):
        if backend == "postgres":
            postgres.reset_schema(database_url.rsplit("/", 1)[1])
            url = database_url
        else:
            url = database_url.replace("rolebook.db", f"pair{pair}.db")
        results = _start_together(url, 2)
        assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
        assert query(url, RECORDED) == [(s.version, s.name) for s in STEPS]
