"""`python -m bench.storage_scale`: do member reads stay flat as an account, and the number of
accounts, grow? On SQLite and PostgreSQL, at 1k, 10k and 100k members in one account.

For each backend and size, a fresh database (SQLite: a temp file; PostgreSQL: a throw-away
database `rolebook_bench_<hex>`, dropped at the end) is created by `Store`, so the tables and
indexes are exactly the ones `storage/entities.py` declares. Then it is filled in bulk through
a plain DB-API connection of its own, in one transaction: `executemany` on sqlite3,
`psycopg2.extras.execute_values` on PostgreSQL (pages of 2,000 rows). One account of N members
("big"), 10 accounts of N/10 members and N/20 accounts of 2 members, so the number of accounts
(61 at 1k, 5,011 at 100k) and of memberships (~2.1 N) grow with N. User ids are random
(`u` + 16 hex), so key order is not insertion order. PostgreSQL is ANALYZEd after the load (what
autovacuum would soon do); SQLite is not (rolebook does not run ANALYZE on SQLite).

Timed with `perf_counter_ns` around each call, after a warm-up, over --reps repetitions
(p50 / p99 in µs): `store.members.list(big, 100, cursor)` for the first, a middle and the last
page (cursors built with the repository's own cursor encoding, checked against a followed
cursor), the same with a role filter (`edit`: a quarter of the members; `owner`: two),
`store.accounts.role_of`, `store.accounts.access` and `store.members.member_facts` for random
members, and `POST /v1/check` with `account_id` through the whole Falcon app in process
(`falcon.testing.TestClient`, a `check`-scoped token, decision log off), for a `report view`
and for a `member remove` whose stored facts (target role, owner count) come from storage.
Rows marked "account cache" repeat `access` and both checks through a Store with the account
cache on, asking about HOT members in turn, so after the warm-up every answer is a hit.
"SQL only" rows run the main statement of a page and of role_of alone: the database's share.
All sizes of a backend are open at once and timed call by call in turn (1k, 10k, 100k, 100k,
10k, 1k, ...), so load from other processes falls on every size alike and the ratio between
sizes holds on a busy machine; comparisons between operations are looser than that.

The SQL Pony sends for each operation is captured (by wrapping the Store's `Database._exec_sql`)
and EXPLAINed at the largest size (SQLite `EXPLAIN QUERY PLAN`, PostgreSQL `EXPLAIN`): the
output says, per statement, whether it is answered through an index and whether it sorts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import falcon.testing
from pony.orm import db_session

from rolebook.api.app import build_services, create_app
from rolebook.api.auth import mint
from rolebook.api.config import Config
from rolebook.storage import Store
from rolebook.storage.account_cache import STAMPS_FILE, AccountCache, Stamps
from rolebook.storage.base import encode_cursor

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
PAGE = 100
HOT = 16
OWNERS = 2
EDIT_SHARE = 4  # one member in 4 has role "edit" (a full middle page even at 1k)
OTHER_ACCOUNTS = 10
SMALL_ACCOUNT_SHARE = 20  # N/20 accounts of 2 members
JWT_SECRET = "bench-storage-" + "x" * 32


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.storage_scale",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,10000,100000",
                   help="members of the big account, comma separated")
    p.add_argument("--backends", default="sqlite,postgres", help="sqlite, postgres or both")
    p.add_argument("--reps", type=int, default=200, help="timed calls per operation")
    p.add_argument("--warmup", type=int, default=30, help="untimed calls per operation first")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    args = p.parse_args(argv)
    args.sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not args.sizes or min(args.sizes) < 2 * PAGE + 10:
        p.error(f"sizes must be at least {2 * PAGE + 10}")
    if set(args.backends) - {"sqlite", "postgres"}:
        p.error("backends: sqlite, postgres")
    return args


# ---------------------------------------------------------------- databases


@contextmanager
def sqlite_database(workdir: Path) -> Iterator[str]:
    yield f"sqlite:///{workdir / 'db' / 'rolebook.db'}"


def pg_admin() -> Any:
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", connect_timeout=3, **PG)
    conn.autocommit = True
    return conn


def pg_unreachable() -> str | None:
    try:
        import psycopg2  # noqa: F401
    except ImportError as exc:
        return f"psycopg2 is not installed: {exc}"
    try:
        pg_admin().close()
    except Exception as exc:
        return f"PostgreSQL not reachable on {PG['host']}:{PG['port']}: {exc}".strip()
    return None


@contextmanager
def pg_database(workdir: Path) -> Iterator[str]:
    del workdir
    admin = pg_admin()
    name = f"rolebook_bench_{secrets.token_hex(6)}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def raw_connection(backend: str, url: str) -> Any:
    if backend == "sqlite":
        return sqlite3.connect(url[len("sqlite://"):], timeout=30)
    import psycopg2

    return psycopg2.connect(dbname=url.rsplit("/", 1)[1], **PG)


# ---------------------------------------------------------------- data


def user_id(rng: random.Random) -> str:
    return "u" + rng.getrandbits(64).to_bytes(8, "big").hex()


def build_rows(n: int, seed: int) -> dict[str, Any]:
    """Users, accounts and memberships for one size, deterministic for a seed."""
    rng = random.Random(seed * 1_000_003 + n)
    now = datetime(2025, 1, 1)
    users: dict[str, tuple] = {}

    def user() -> str:
        uid = user_id(rng)
        while uid in users:
            uid = user_id(rng)
        users[uid] = (uid, f"{uid}@example.com", f"{uid}@example.com", None, None)
        return uid

    accounts: list[tuple] = []
    memberships: list[tuple] = []

    def account(aid: str, size: int) -> list[str]:
        ids = [user() for _ in range(size)]
        accounts.append((aid, aid, "convert", None, now, ids[0], 1))
        for i, uid in enumerate(ids):
            role = "owner" if i < OWNERS else "edit" if i % EDIT_SHARE == 0 else "read"
            memberships.append((aid, uid, role, now))
        return ids

    big = account("acc_big", n)
    for k in range(OTHER_ACCOUNTS):
        account(f"acc_mid_{k:02d}", n // OTHER_ACCOUNTS)
    for k in range(n // SMALL_ACCOUNT_SHARE):
        account(f"acc_small_{k:06d}", 2)
    return {"users": list(users.values()), "accounts": accounts,
            "memberships": memberships, "big": big}


def load(backend: str, url: str, rows: dict[str, Any]) -> None:
    """Bulk insert in one transaction through a connection of our own (tables exist)."""
    statements = [
        ("rb_user", '"id", "email", "email_lower", "first_name", "last_name"', rows["users"]),
        ("rb_account", '"id", "name", "policy", "policy_version", "created_at", "created_by", '
                       '"version"', rows["accounts"]),
        ("rb_membership", '"account", "user", "role", "joined_at"', rows["memberships"]),
    ]
    conn = raw_connection(backend, url)
    try:
        cur = conn.cursor()
        for table, columns, values in statements:
            if backend == "sqlite":
                marks = ", ".join("?" * len(values[0]))
                cur.executemany(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', values)
            else:
                from psycopg2.extras import execute_values

                execute_values(cur, f'INSERT INTO "{table}" ({columns}) VALUES %s', values,
                               page_size=2000)
        conn.commit()
        if backend == "postgres":
            conn.autocommit = True
            cur.execute("ANALYZE")
    finally:
        conn.close()


# ---------------------------------------------------------------- SQL capture and EXPLAIN


class SqlRecorder:
    """Wraps `store.db._exec_sql` so the statements Pony sends can be EXPLAINed later."""

    def __init__(self, store: Store):
        self.db = store.db
        self.original = store.db._exec_sql
        self.captured: list[tuple[str, Any]] | None = None
        store.db._exec_sql = self  # an instance attribute wins over the method

    def __call__(self, sql: str, arguments: Any = None, *args: Any, **kwargs: Any) -> Any:
        if self.captured is not None:
            self.captured.append((sql, arguments))
        return self.original(sql, arguments, *args, **kwargs)

    def capture(self, fn: Callable[[], Any]) -> list[tuple[str, Any]]:
        self.captured = []
        try:
            fn()
            return self.captured
        finally:
            self.captured = None

    def explain(self, backend: str, sql: str, arguments: Any) -> list[str]:
        prefix = "EXPLAIN QUERY PLAN " if backend == "sqlite" else "EXPLAIN "
        with db_session:
            rows = self.original(prefix + sql, arguments).fetchall()
        if backend == "sqlite":
            return [str(r[-1]) for r in rows]
        return [str(r[0]) for r in rows]


def judge(backend: str, plan: list[str]) -> dict[str, Any]:
    text = "\n".join(plan)
    if backend == "sqlite":
        index = any(k in text for k in ("USING INDEX", "USING COVERING INDEX",
                                        "USING PRIMARY KEY", "USING INTEGER PRIMARY KEY"))
        full_scan = any(line.startswith("SCAN") and "USING" not in line for line in plan)
        sort = "TEMP B-TREE" in text
    else:
        index = "Index Scan" in text or "Index Only Scan" in text or "Bitmap Index" in text
        full_scan = "Seq Scan" in text
        sorts = [line for line in plan
                 if line.lstrip(" ->").startswith(("Sort ", "Incremental Sort "))]
        sort = bool(sorts)
        if sorts and (m := re.search(r"rows=(\d+)", sorts[0])):
            return {"index": index, "full_scan": full_scan, "sort": sort,
                    "sort_rows_estimate": int(m.group(1))}
    return {"index": index, "full_scan": full_scan, "sort": sort}


def one_line(sql: str) -> str:
    return " ".join(sql.split())


# ---------------------------------------------------------------- timing


def operations(store: Store, client: falcon.testing.TestClient, token: str,
               data: dict[str, Any], seed: int,
               cached: tuple[Store, falcon.testing.TestClient]) -> dict[str, Callable[[int], Any]]:
    big = data["big"]
    ordered = sorted(big)
    n = len(ordered)
    edits = sorted(u for i, u in enumerate(big) if i >= OWNERS and i % EDIT_SHARE == 0)
    owners = big[:OWNERS]
    rng = random.Random(seed)
    picks = [rng.choice(big) for _ in range(4096)]
    hot = picks[:HOT]  # members asked about again and again: what a cache is for
    middle = encode_cursor("members", ordered[n // 2 - 1])
    last = encode_cursor("members", ordered[n - PAGE - 1])
    edit_middle = encode_cursor("members", edits[len(edits) // 2 - 1])
    members, accounts = store.members, store.accounts
    headers = {"Authorization": f"Bearer {token}"}

    # The built cursors must be what paging hands out, and the pages what they should be.
    first, cursor = members.list("acc_big", PAGE)
    second, _ = members.list("acc_big", PAGE, cursor)
    assert [m["user_id"] for m in first + second] == ordered[: 2 * PAGE]
    assert cursor == encode_cursor("members", ordered[PAGE - 1])
    page, after = members.list("acc_big", PAGE, last)
    assert [m["user_id"] for m in page] == ordered[-PAGE:] and after is None
    page, _ = members.list("acc_big", PAGE, middle)
    assert [m["user_id"] for m in page] == ordered[n // 2: n // 2 + PAGE]

    def check(kind: str, i: int, client: falcon.testing.TestClient = client,
              among: list[str] = picks) -> None:
        uid = among[i % len(among)]
        resource: dict[str, Any] = {"kind": "report", "actions": ["view"]}
        if kind == "member":
            resource = {"kind": "member", "id": owners[1], "actions": ["remove"]}
        body = {"principal": {"id": uid}, "account_id": "acc_big", "resources": [resource]}
        result = client.simulate_post("/v1/check", json=body, headers=headers)
        if result.status_code != 200 or result.json["principal"]["role"] is None:
            raise RuntimeError(f"/v1/check answered {result.status_code}: {result.text[:300]}")

    def role_of(i: int) -> None:
        if accounts.role_of("acc_big", picks[i % len(picks)]) is None:
            raise RuntimeError("role_of found no role for a member")

    return {
        "members.list first page": lambda i: members.list("acc_big", PAGE),
        "members.list middle page": lambda i: members.list("acc_big", PAGE, middle),
        "members.list last page": lambda i: members.list("acc_big", PAGE, last),
        "members.list role=edit first": lambda i: members.list("acc_big", PAGE, role="edit"),
        "members.list role=edit middle": lambda i: members.list("acc_big", PAGE, edit_middle,
                                                                role="edit"),
        "members.list role=owner": lambda i: members.list("acc_big", PAGE, role="owner"),
        "accounts.role_of": role_of,
        "accounts.access": lambda i: accounts.access("acc_big", picks[i % len(picks)]),
        "members.member_facts": lambda i: members.member_facts(
            "acc_big", picks[i % len(picks)], owners[1], "owner"),
        "POST /v1/check report view": lambda i: check("report", i),
        "POST /v1/check member remove": lambda i: check("member", i),
        "accounts.access, account cache": lambda i: cached[0].accounts.access(
            "acc_big", hot[i % HOT]),
        "POST /v1/check report view, account cache": lambda i: check("report", i, cached[1],
                                                                    hot),
        "POST /v1/check member remove, account cache": lambda i: check("member", i, cached[1],
                                                                      hot),
    }


# ---------------------------------------------------------------- one backend, all sizes


def open_size(stack: ExitStack, backend: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """A database of size n, filled, with its Store, app and operations; closed by `stack`."""
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rolebook-scale-")))
    opener = sqlite_database if backend == "sqlite" else pg_database
    url = stack.enter_context(opener(workdir))
    t0 = time.perf_counter()
    data = build_rows(n, args.seed)
    store = Store(url)
    t1 = time.perf_counter()
    load(backend, url, data)
    t2 = time.perf_counter()
    result: dict[str, Any] = {
        "backend": backend, "members": n,
        "rows": {k: len(data[k]) for k in ("users", "accounts", "memberships")},
        "build_seconds": {"generate_and_create_tables": round(t1 - t0, 2),
                          "bulk_insert": round(t2 - t1, 2)},
    }
    rows = result["rows"]
    print(f"  {backend} {n:>7,} members: {rows['accounts']:,} accounts, "
          f"{rows['memberships']:,} memberships, {rows['users']:,} users; built in "
          f"{t2 - t0:.1f} s (bulk insert {t2 - t1:.1f} s)", flush=True)
    recorder = SqlRecorder(store)
    config = Config(data_dir=str(workdir / "var"), database_url=url,
                    policy_dir=str(REPO / "policies"), jwt_secret=JWT_SECRET,
                    decision_log="off", extra={"mail_poll_seconds": 3600.0})
    cached_store = Store(url, cache=AccountCache(Stamps(workdir / STAMPS_FILE)))
    services = build_services(config, store)
    cached_services = build_services(config, cached_store)

    def close() -> None:
        for running in (services, cached_services):
            running.mailer.stop()
            running.decisions.close()
            running.store.db.disconnect()

    stack.callback(close)
    client = falcon.testing.TestClient(create_app(config, services))
    cached_client = falcon.testing.TestClient(create_app(config, cached_services))
    token = mint(config, "bench-service", "bench@example.com", "check")
    ops = operations(store, client, token, data, args.seed, (cached_store, cached_client))
    ops.update(sql_operations(recorder, ops))
    return {"result": result, "ops": ops, "recorder": recorder}


def sql_operations(recorder: SqlRecorder,
                   ops: dict[str, Callable[[int], Any]]) -> dict[str, Callable[[int], Any]]:
    """The main statement of a few operations alone, through Pony's connection: the database's
    share of the time, without Pony building objects."""
    out = {}
    for name, pick in (("members.list last page", 1), ("accounts.role_of", 0)):
        sql, arguments = recorder.capture(lambda fn=ops[name]: fn(0))[pick]
        assert '"rb_membership"' in sql, sql

        def run(i: int, sql: str = sql, arguments: Any = arguments) -> None:
            with db_session:
                recorder.original(sql, arguments).fetchall()

        out[f"SQL only: {name.split('.', 1)[1]}"] = run
    return out


def cpu_snapshot() -> tuple[float, float, float]:
    """(wall, machine busy core-seconds, this process's core-seconds)."""
    busy = 0.0
    with suppress(OSError), open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
        busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    t = os.times()
    return time.perf_counter(), busy, t.user + t.system


def run_backend(backend: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]], list]:
    """Build every size, then time each operation with the sizes interleaved call by call, so
    that other load on the machine falls on all sizes alike."""
    with ExitStack() as stack:
        envs = [open_size(stack, backend, n, args) for n in args.sizes]
        explains = explain_all(backend, envs[-1]["recorder"], envs[-1]["ops"])
        for env in envs:
            env["samples"] = {}
        before = cpu_snapshot()
        for name in envs[0]["ops"]:
            for env in envs:
                for i in range(args.warmup):
                    env["ops"][name](i)
                env["samples"][name] = []
            clock = time.perf_counter_ns
            for i in range(args.reps):
                order = envs if i % 2 == 0 else envs[::-1]
                for env in order:
                    fn = env["ops"][name]
                    start = clock()
                    fn(i)
                    env["samples"][name].append(clock() - start)
        after = cpu_snapshot()
        wall = after[0] - before[0]
        others = max(0.0, (after[1] - before[1]) - (after[2] - before[2])) / wall
        print(f"  timed in {wall:.0f} s; other processes used {others:.2f} of "
              f"{os.cpu_count()} cores meanwhile", flush=True)
        results = []
        for env in envs:
            result = env["result"]
            result["timings"] = {k: summarize(v) for k, v in env["samples"].items()}
            result["timing_seconds_all_sizes"] = round(wall, 1)
            result["other_processes_cores"] = round(others, 2)
            results.append(result)
        results[-1]["explain"] = explains
    return results, explains


def summarize(samples: list[int]) -> dict[str, float]:
    samples = sorted(samples)

    def pct(p: float) -> float:
        return samples[min(len(samples) - 1, int(p * len(samples)))] / 1000

    return {"p50_us": round(pct(0.50), 1), "p99_us": round(pct(0.99), 1),
            "mean_us": round(sum(samples) / len(samples) / 1000, 1), "n": len(samples)}


def explain_all(backend: str, recorder: SqlRecorder,
                ops: dict[str, Callable[[int], Any]]) -> list[dict[str, Any]]:
    wanted = [n for n in ops if n.startswith(("members.", "accounts."))]
    found = []
    seen: set[str] = set()
    for name in wanted:
        for sql, arguments in recorder.capture(lambda fn=ops[name]: fn(0)):
            text = one_line(sql)
            # A membership statement's plan may depend on its values (role=owner or edit).
            key = text + repr(arguments) if '"rb_membership"' in sql else text
            if key in seen:
                continue
            seen.add(key)
            plan = recorder.explain(backend, sql, arguments)
            found.append({"operation": name, "sql": text, "plan": plan, **judge(backend, plan)})
    return found


# ---------------------------------------------------------------- report


def print_explain(backend: str, entries: list[dict[str, Any]]) -> None:
    print(f"\n== EXPLAIN on {backend} (largest size): the SQL Pony sends ==")
    for e in entries:
        verdict = "index" if e["index"] and not e["full_scan"] else "NO INDEX (full scan)"
        if e["sort"]:
            rows = e.get("sort_rows_estimate")
            verdict += " + SORT" + (f" of ~{rows} row(s)" if rows is not None else "")
        print(f"- [{verdict}] {e['operation']}: {e['sql'][:150]}")
        for line in e["plan"]:
            print(f"      {line if len(line) < 140 else line[:120] + ' ...'}")


def short(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def print_table(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    print("\n== timings (µs per call) ==")
    header = f"{'backend':<9} {'members':>8}  {'operation':<32} {'p50 µs':>9} {'p99 µs':>9}"
    print(header)
    print("-" * len(header))
    for r in results:
        for op, t in r["timings"].items():
            print(f"{r['backend']:<9} {r['members']:>8,}  {op:<32} {t['p50_us']:>9,.1f} "
                  f"{t['p99_us']:>9,.1f}")
        print()
    print("== growth: p50 at the largest size / p50 at the smallest (flat = near 1) ==")
    by_backend: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_backend.setdefault(r["backend"], []).append(r)
    for backend, runs in by_backend.items():
        runs.sort(key=lambda r: r["members"])
        small, large = runs[0], runs[-1]
        if small is large:
            continue
        label = f"{short(large['members'])}/{short(small['members'])}"
        for op in large["timings"]:
            a, b = small["timings"][op], large["timings"][op]
            ratio = b["p50_us"] / a["p50_us"] if a["p50_us"] else float("nan")
            ratio99 = b["p99_us"] / a["p99_us"] if a["p99_us"] else float("nan")
            verdict = "flat" if ratio < 1.5 else "GROWS"
            rows.append({"backend": backend, "operation": op, "ratio": label,
                         "p50_ratio": round(ratio, 2), "p99_ratio": round(ratio99, 2)})
            print(f"{backend:<9} {op:<32} {label:>9} p50 x{ratio:5.2f}  p99 x{ratio99:5.2f}  "
                  f"{verdict}")
    return rows


def git_state() -> dict[str, Any]:
    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True,
                                  timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = git("status", "--porcelain", "--", "storage", "api", "bench/storage_scale.py")
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted": changed.splitlines()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for backend in args.backends:
        if backend == "postgres" and (reason := pg_unreachable()):
            print(f"skipping postgres: {reason}")
            skipped[backend] = reason
            continue
        print(f"== {backend} ==", flush=True)
        runs, explains = run_backend(backend, args)
        results.extend(runs)
        print_explain(backend, explains)
    growth = print_table(results)
    total = time.perf_counter() - started
    print(f"\ntotal {total:.0f} s")
    if args.no_save or not results:
        return 0
    load_avg = None
    with suppress(OSError):
        load_avg = os.getloadavg()
    report = {
        "kind": "storage-scale",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {"sizes": args.sizes, "backends": args.backends, "reps": args.reps,
                     "warmup": args.warmup, "seed": args.seed, "page": PAGE,
                     "other_accounts": OTHER_ACCOUNTS,
                     "small_accounts": f"N/{SMALL_ACCOUNT_SHARE} of 2 members"},
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "cpus": os.cpu_count(), "load_average_at_end": load_avg},
        "git": git_state(),
        "skipped": skipped,
        "results": results,
        "growth": growth,
        "total_seconds": round(total, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"storage-{stamp}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str) + "\n")
    tmp.replace(path)
    print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
