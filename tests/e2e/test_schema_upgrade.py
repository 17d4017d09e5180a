"""Schema versions as an operator meets them: `rolebook db status|upgrade` and `serve`.

The `db` commands run in process through the CLI's own entry point (each `rolebook`
process spends seconds importing on a loaded 2-core machine); `serve` runs for real.

Protects: `db status` tells an earlier build's database (no version recorded) from an
up-to-date one, lists the pending steps and exits 1 while any are; `db upgrade` applies
them, keeps every row, and takes the database from --data-dir or ROLEBOOK_DATABASE_URL
as `serve` does; a newer database is refused by all three, naming both versions;
`serve` upgrades an earlier build's database on start and serves its rows; and a table
that does not match answers 503 storage-integrity, never 409 "retry".
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from rolebook.api.cli import main
from rolebook.storage.migrations import LATEST, STEPS
from tests.support import live
from tests.support.client import users_of
from tests.support.live import REPO
from tests.support.schema import (
    OLD_INDEX,
    add_unfilled_column,
    execute,
    fill,
    indexes,
    previous_schema,
    rows,
)

SECRET = "schema-secret-" + "s" * 32


@pytest.fixture
def rolebook(capsys, monkeypatch):
    """Run `rolebook ARGS` in process with extra environment; (exit code, stdout, stderr)."""

    def run(*args: str, env: dict | None = None) -> Result:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        code = main(list(args))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def earlier_build(url: str, policy: str = "testpol") -> list[str]:
    legacy = previous_schema(url)
    try:
        return fill(legacy, policy=policy)
    finally:
        legacy.disconnect()


def where(database_url: str, tmp_path) -> tuple[list[str], dict]:
    """How to name the database: SQLite by --data-dir (the default file), PostgreSQL by
    the environment variable."""
    if database_url.startswith("sqlite:"):
        return ["--data-dir", database_url[len("sqlite:///"):].rsplit("/", 1)[0]], {}
    return ["--data-dir", str(tmp_path / "var")], {"ROLEBOOK_DATABASE_URL": database_url}


def test_db_status_and_upgrade_on_an_earlier_builds_database(database_url, tmp_path,
                                                             rolebook):
    earlier_build(database_url)
    before = rows(database_url)
    flags, env = where(database_url, tmp_path)

    status = rolebook("db", "status", *flags, env=env)
    assert status.returncode == 1, status.stderr
    assert "schema version none recorded: tables of a build before schema versions" in \
        status.stdout
    for step in STEPS:
        assert f"pending {step.version} {step.name}: " in status.stdout
    assert "rolebook db upgrade" in status.stdout

    upgrade = rolebook("db", "upgrade", *flags, env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    assert upgrade.stdout.splitlines()[1:] == [
        *(f"applied {step.version} {step.name}" for step in STEPS),
        f"schema version {LATEST} (up to date)"]
    assert rows(database_url) == before
    assert OLD_INDEX not in indexes(database_url, "rb_membership")

    status = rolebook("db", "status", *flags, env=env)
    assert status.returncode == 0, status.stderr
    assert f"schema version {LATEST} (up to date)" in status.stdout
    assert [line.split(" at ")[0] for line in status.stdout.splitlines()[2:]] == [
        f"applied {step.version} {step.name}" for step in STEPS]
    again = rolebook("db", "upgrade", *flags, env=env)
    assert again.returncode == 0 and "applied" not in again.stdout


def test_a_newer_database_is_refused_by_db_and_serve(tmp_path, rolebook):
    data = tmp_path / "var"
    assert rolebook("db", "upgrade", "--data-dir", str(data)).returncode == 0
    url = f"sqlite:///{data}/rolebook.db"
    execute(url, f"INSERT INTO rb_schema_version VALUES ({LATEST + 1}, 'later', "
            "CURRENT_TIMESTAMP)")
    named = (f"version {LATEST + 1}, newer than this rolebook knows (version {LATEST})",
             f"{LATEST + 1}, newer than this rolebook knows ({LATEST})")
    status = rolebook("db", "status", "--data-dir", str(data))
    assert status.returncode == 2 and named[1] in status.stdout
    upgrade = rolebook("db", "upgrade", "--data-dir", str(data))
    assert upgrade.returncode == 2 and named[0] in upgrade.stderr
    serve = subprocess.run([sys.executable, "-m", "rolebook", "serve", "--data-dir", str(data),
                            "--port", "0", "--policy-dir", str(REPO / "policies")],
                           cwd=REPO, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    assert serve.returncode == 2
    assert "cannot start: --database-url / ROLEBOOK_DATABASE_URL" in serve.stderr
    assert named[0] in serve.stderr


def test_serve_upgrades_an_earlier_builds_database_and_serves_its_rows(tmp_path):
    data = tmp_path / "var"
    url = f"sqlite:///{data}/rolebook.db"
    account_ids = earlier_build(url, policy="convert")
    server = live.start(data, "--workers", "1", "--jwt-secret", SECRET)
    try:
        assert f"schema: applied {LATEST} {STEPS[-1].name}" in server.output()
        assert OLD_INDEX not in indexes(url, "rb_membership")
        owner = users_of(server.url, SECRET)("owner1", "owner1@example.com")
        account = owner.get(f"/v1/accounts/{account_ids[1]}")
        assert account.status == 200 and account.json["name"] == "Account 1", account
        members = owner.get(f"/v1/accounts/{account_ids[1]}/members")
        assert members.status == 200 and len(members.json["items"]) == 5, members
    finally:
        server.stop()


def test_a_table_that_does_not_match_is_503_not_409(database_url, tmp_path):
    server = live.start(tmp_path / "served", "--workers", "1", "--jwt-secret", SECRET,
                        env={"ROLEBOOK_DATABASE_URL": database_url})
    try:
        add_unfilled_column(database_url)
        alice = users_of(server.url, SECRET)("alice", "alice@example.com")
        for _ in range(2):  # retrying changes nothing
            created = alice.post("/v1/accounts", {"name": "Acme"})
            assert created.status == 503, created
            assert created.headers["Content-Type"] == "application/problem+json"
            assert created.json["type"].endswith("/storage-integrity")
            assert "retrying will not help" in created.json["detail"]
        assert alice.get("/v1/accounts").json["items"] == []
        assert "integrity error that is not a race" in server.output()
    finally:
        server.stop()
