"""`python -m bench.account_cache`: `POST /v1/check` with `account_id` on PostgreSQL, the
account cache on against off, in the same run.

One throw-away PostgreSQL database (`rolebook_bench_<hex>`, dropped at the end) filled as
bench/storage_scale.py fills it at --members N (one account of N members, 10 of N/10, N/20
of 2: about 2.1 N memberships). Two `rolebook serve` replicas on it, each with its own data
dir, port and --workers, one `--account-cache on`, one `--account-cache off`, everything
else at its defaults (so each writes its decision log). Each request is one `report view`
check of one member of one account, `principal` given by id only, so the server looks the
role up: the bodies (--bodies of them, one per membership drawn at random) are pre-rendered
and cycled by wrk (one thread, --connections). With the cache on, every membership fits in
its 10,000 answers a process, so after the warm-up every answer is a hit: the figure is the
cache's best case, the off figure its worst. Before timing, a sample of the bodies is sent to
each replica and every answer must carry the member's stored role.

Runs alternate (on, off, on, off, ... --rounds of each, --seconds each, after a 2 s warm-up
per replica) so the machine's other load falls on both alike; wrk's requests/s, p50 and p99
per request, the server tree's cores and the rest of the machine's ("others") are printed per
run and written to bench/results/account-cache-<UTC timestamp>.json (not with --no-save).
Traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
from contextlib import suppress
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench.extras import ensure_wrk, tool_version
from bench.loopback import post_json, run_wrk, start_rolebook
from bench.run import git_state
from bench.storage_scale import build_rows, load, pg_admin, pg_database, pg_unreachable
from rolebook.storage import Store

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
MODES = ("on", "off")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.account_cache", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=1000, help="N: the largest account's size")
    p.add_argument("--bodies", type=int, default=2000, help="distinct request bodies")
    p.add_argument("--connections", type=int, default=8, help="wrk connections (modest load)")
    p.add_argument("--seconds", type=int, default=10, help="duration of each timed run")
    p.add_argument("--rounds", type=int, default=1, help="timed runs of each mode, alternated")
    p.add_argument("--workers", type=int, default=2, help="--workers of each replica")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    return p.parse_args(argv)


def bodies(rows: dict, count: int, seed: int) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Rendered bodies, and the (account, user, role) each asks about."""
    picked = random.Random(seed).choices(rows["memberships"], k=count)
    asked = [(account, user, role) for account, user, role, _ in picked]
    rendered = [json.dumps({"principal": {"id": user}, "account_id": account,
                            "resources": [{"kind": "report", "id": "r", "actions": ["view"]}]},
                           separators=(",", ":")) for account, user, _ in asked]
    return rendered, asked


def verify(server, rendered: list[str], asked: list, sample: int = 50) -> None:
    """Every sampled answer is a 200 naming the member's stored role."""
    conns: dict = {}
    for body, (_, user, role) in list(zip(rendered, asked, strict=True))[:sample]:
        status, doc = post_json(server.url, server.headers, body.encode(), conns)
        if status != 200 or doc["principal"] != {"id": user, "role": role}:
            raise SystemExit(f"{server.version}: {status} {str(doc)[:300]} (expected {role})")
    for conn in conns.values():
        conn.close()


def database_connections(url: str) -> int:
    """Connections to the bench database: each worker's request threads, mail sender and
    listener (the cache's, with the cache on), as PostgreSQL counts them."""
    admin = pg_admin()
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                        (url.rsplit("/", 1)[1],))
            return cur.fetchone()[0]
    finally:
        admin.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reason = pg_unreachable()
    if reason:
        print(f"skipped: {reason}")
        return 0
    wrk = ensure_wrk()
    if not wrk:
        print("skipped: wrk is not available")
        return 0
    rows = build_rows(args.members, args.seed)
    rendered, asked = bodies(rows, args.bodies, args.seed)
    runs: list[dict] = []
    connections = None
    with tempfile.TemporaryDirectory(prefix="bench-account-cache-") as workdir, \
            pg_database(Path(workdir)) as url:
        Store(url).close()  # the tables, by the migrations
        load("postgres", url, rows)
        body_file = Path(workdir) / "bodies.txt"
        body_file.write_text("\n".join(rendered) + "\n")
        servers = {}
        try:
            for mode in MODES:
                servers[mode] = start_rolebook(args.workers, ["--database-url", url,
                                                              "--account-cache", mode])
                verify(servers[mode], rendered, asked)
                run_wrk(wrk, servers[mode], body_file, 1, args.connections, 2)  # warm-up
            print(f"{len(rows['memberships'])} memberships, {args.bodies} bodies, "
                  f"{args.connections} connections, --workers {args.workers} per replica")
            print(f"{'cache':<6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'server cores':>13} "
                  f"{'others':>7} {'errors':>7}")
            for round_ in range(args.rounds):
                for mode in MODES:
                    run = run_wrk(wrk, servers[mode], body_file, 1, args.connections,
                                  args.seconds)
                    errors = sum(run.errors.values())
                    runs.append({"cache": mode, "round": round_, **asdict(run)})
                    print(f"{mode:<6} {run.requests_per_s:>8,.0f} {run.p50_ns / 1e6:>8.2f} "
                          f"{run.p99_ns / 1e6:>8.2f} {run.server_cores:>13.2f} "
                          f"{run.other_cores:>7.2f} {errors:>7}", flush=True)
            connections = database_connections(url)
            print(f"database connections open on both replicas together: {connections}")
        finally:
            for server in servers.values():
                server.stop()
    if args.no_save:
        return 0
    load_avg = None
    with suppress(OSError):
        load_avg = os.getloadavg()
    report = {
        "kind": "account-cache",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {k: v for k, v in vars(args).items() if k != "no_save"},
        "memberships": len(rows["memberships"]),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "cpus": os.cpu_count(), "load_average_at_end": load_avg,
                    "wrk": tool_version([wrk, "--version"])},
        "git": git_state(),
        "runs": runs,
        "database_connections": connections,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"account-cache-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
