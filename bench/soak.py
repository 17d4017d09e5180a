"""Sixty seconds at the benchmark's heaviest load, per server option: does any request fail, does
any worker's memory grow, does the decision log drop anything?

    python -m bench.soak                     # both servers (granian when installed), 60 s each
    python -m bench.soak --servers waitress --seconds 20 --checks-per-request 50

`rolebook serve` at its defaults (decision log to a file, access log on), driven by wrk at 32
connections. Each worker's resident memory (VmRSS) is read when the server is ready, after a
warm-up (the baseline: allocator arenas and caches filled) and at the end; growth is end over
baseline. The `rolebook_decision_log_dropped` counter is read from /metrics at the end. Results go
to bench/results/soak-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from bench import extras, loopback
from bench.workload import SEED, generate

RESULTS = Path(__file__).resolve().parent / "results"
GROWTH_LIMIT = 0.10  # the bound on a worker's growth over the run


def workers_of(supervisor: int) -> list[int]:
    """The supervisor's worker processes (its children)."""
    out = subprocess.run(["pgrep", "-P", str(supervisor)], capture_output=True, text=True,
                         check=False).stdout
    return sorted(int(p) for p in out.split())


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def metric(url: str, name: str, headers: dict[str, str]) -> float | None:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return None


def soak(wrk: str, server_name: str, args: argparse.Namespace) -> dict:
    extra = [] if server_name == "waitress" else ["--server", server_name]
    server = loopback.start_rolebook(args.workers, extra, name=f"rolebook-{server_name}")
    try:
        work = generate(100_000, SEED)
        per = args.checks_per_request
        groups = ([[c] for c in work.checks[: loopback.SINGLE_BODIES]] if per == 1 else
                  loopback.group_by_principal(work.checks, per, loopback.BATCH_BODIES))
        bodies = server.workdir / "bodies.jsonl"
        loopback.write_bodies(server, groups, bodies)
        workers = workers_of(server.proc.pid)
        ready = {pid: rss_kib(pid) for pid in workers}
        loopback.run_wrk(wrk, server, bodies, per, args.connections, args.warmup_seconds)
        baseline = {pid: rss_kib(pid) for pid in workers}
        run = loopback.run_wrk(wrk, server, bodies, per, args.connections, args.seconds)
        end = {pid: rss_kib(pid) for pid in workers}
        base = server.url.rsplit("/v1/", 1)[0]
        dropped = metric(f"{base}/metrics", "rolebook_decision_log_dropped_total",
                         server.headers)
        replaced = sorted(set(workers_of(server.proc.pid)) - set(workers))
    finally:
        server.stop()
    rows = [{"pid": pid, "ready_kib": ready[pid], "baseline_kib": baseline[pid],
             "end_kib": end[pid],
             "growth": (end[pid] - baseline[pid]) / baseline[pid]
             if end[pid] and baseline[pid] else None} for pid in workers]
    return {"server": server_name, "seconds": run.seconds, "connections": args.connections,
            "checks_per_request": per, "requests": run.requests,
            "requests_per_s": run.requests_per_s, "p50_ns": run.p50_ns, "p99_ns": run.p99_ns,
            "errors": run.errors, "decision_log_dropped": dropped,
            "workers_replaced": replaced, "workers": rows}


def report(result: dict) -> bool:
    failed = sum(result["errors"].values())
    print(f"{result['server']}: {result['requests']:,} requests in {result['seconds']:.0f} s "
          f"({result['requests_per_s']:,.0f}/s, p50 {result['p50_ns'] / 1e6:.2f} ms, p99 "
          f"{result['p99_ns'] / 1e6:.2f} ms), {failed} failed {result['errors']}, decision log "
          f"dropped {result['decision_log_dropped']:.0f}, workers replaced: "
          f"{len(result['workers_replaced'])}")
    ok = failed == 0 and result["decision_log_dropped"] == 0 and not result["workers_replaced"]
    for w in result["workers"]:
        growth = w["growth"]
        ok = ok and growth is not None and growth < GROWTH_LIMIT
        print(f"    worker {w['pid']}: RSS {w['ready_kib'] / 1024:.1f} MiB ready, "
              f"{w['baseline_kib'] / 1024:.1f} MiB after warm-up, {w['end_kib'] / 1024:.1f} MiB "
              f"at the end: {'?' if growth is None else f'{100 * growth:+.1f}%'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", default="waitress,granian")
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--warmup-seconds", type=int, default=10)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--checks-per-request", type=int, default=1)
    p.add_argument("--workers", type=int, default=0, help="rolebook serve --workers")
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args(argv)
    wrk = extras.ensure_wrk() or shutil.which("wrk")
    if not wrk:
        print("soak: wrk is not available", file=sys.stderr)
        return 2
    from rolebook.api.granian_server import missing

    results, ok = [], True
    for name in filter(None, (s.strip() for s in args.servers.split(","))):
        if name == "granian" and missing():
            print(f"granian: skipped: {missing()}")
            continue
        result = soak(wrk, name, args)
        ok = report(result) and ok
        results.append(result)
    print("every request answered, no worker grew 10% or more, nothing dropped" if ok else
          "SOAK FAILED: see above")
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"soak-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
        path.write_text(json.dumps({"settings": vars(args), "results": results,
                                    "loadavg": os.getloadavg(), "finished": time.time()},
                                   indent=2) + "\n")
        print(f"wrote {path.relative_to(RESULTS.parent.parent)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
