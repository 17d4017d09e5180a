"""`rolebook db status|upgrade`: the database's schema version, and bringing it up to date.

`serve` upgrades on start too, under the same lock; these let an operator look first,
or upgrade ahead of a rollout. Exit codes: status 0 when up to date, 1 when steps are
pending; upgrade 0 once up to date; both 2 when the database cannot be opened or is
newer than this rolebook.
"""

from __future__ import annotations

import sys

from rolebook.api.config import add_arguments, from_arguments

SETTINGS = ("data_dir", "database_url")


def register(sub) -> None:
    db = sub.add_parser("db", help="the database's schema version: status, upgrade")
    commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    status = commands.add_parser("status", help="the schema version the database records, "
                                 "the one this rolebook knows, and the steps between")
    add_arguments(status, SETTINGS)
    status.set_defaults(run=run_status)
    upgrade = commands.add_parser("upgrade", help="apply the pending steps (under a lock: "
                                  "replicas starting meanwhile wait)")
    add_arguments(upgrade, SETTINGS)
    upgrade.set_defaults(run=run_upgrade)


def _open(args, create: bool):
    from pony.orm.dbapiprovider import DBException

    from rolebook.api.server import _named, _safe_url
    from rolebook.storage.store import open_database

    url = from_arguments(args).effective_database_url
    print(f"database {_safe_url(url)}")
    try:
        return open_database(url, create)
    except (ValueError, OSError, DBException) as exc:
        print(f"rolebook: cannot open the database ({_named('database_url')}): "
              f"{str(exc).strip()}", file=sys.stderr)
        return None


def _describe(found) -> str:
    if found.too_new:
        return f"{found.version}, newer than this rolebook knows ({found.latest})"
    if found.unversioned_tables:
        return (f"none recorded: tables of a build before schema versions (version 0 here; "
                f"this rolebook knows {found.latest})")
    known = "up to date" if not found.pending else f"this rolebook knows {found.latest}"
    return f"{found.version} ({'empty database; ' if not found.version else ''}{known})"


def run_status(args) -> int:
    from pony.orm.dbapiprovider import DBException

    from rolebook.storage import schema

    db = _open(args, create=False)
    if db is None:
        return 2
    try:
        found = schema.status(db)
    except DBException as exc:
        print(f"rolebook: cannot read the schema version: {str(exc).strip()}", file=sys.stderr)
        return 2
    finally:
        db.disconnect()
    print(f"schema version {_describe(found)}")
    for step in found.applied:
        print(f"applied {step.version} {step.name} at {step.applied_at}")
    for step in found.pending:
        print(f"pending {step.version} {step.name}: {step.why}")
    if found.too_new:
        return 2
    if found.pending:
        print("run `rolebook db upgrade` to apply them (`rolebook serve` also does, on start)")
        return 1
    return 0


def run_upgrade(args) -> int:
    from pony.orm.dbapiprovider import DBException

    from rolebook.storage import schema

    db = _open(args, create=True)
    if db is None:
        return 2
    try:
        applied = schema.upgrade(db)
    except schema.SchemaTooNew as exc:
        print(f"rolebook: {exc}", file=sys.stderr)
        return 2
    except DBException as exc:
        print(f"rolebook: upgrade failed, nothing changed: {str(exc).strip()}", file=sys.stderr)
        return 2
    finally:
        db.disconnect()
    for step in applied:
        print(f"applied {step.version} {step.name}")
    print(f"schema version {schema.LATEST} (up to date)")
    return 0
