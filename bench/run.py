"""`python -m bench` (`make bench`): rolebook against Cedar, Casbin and Cerbos on the Convert
model. See bench/README.md for what is measured and how to read the table."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import extras, inproc, loopback
from bench.workload import DEFAULT_CHECKS, SEED, Workload, generate

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--checks", type=int, default=DEFAULT_CHECKS, help="workload size (>= 100000)")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--inproc-seconds", type=float, default=10.0, help="timing budget per system")
    p.add_argument("--agree-seconds", type=float, default=180.0, help="agreement budget per system")
    p.add_argument("--http-seconds", type=int, default=10, help="duration of each wrk run")
    p.add_argument("--warmup-seconds", type=int, default=2, help="wrk warm-up per body shape")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=45.0,
        help="before each timed run, wait up to this many seconds for other load to go",
    )
    p.add_argument("--workers", type=int, default=0,
                   help="rolebook serve --workers (default 0: rolebook's own default)")
    p.add_argument(
        "--rolebook-args",
        default="",
        help="extra flags for rolebook serve, e.g. '--decision-log off' (default: none)",
    )
    p.add_argument("--only", choices=("inproc", "http"), help="run one half only")
    p.add_argument("--systems", default="", help="comma list to keep, e.g. rolebook,cedar")
    p.add_argument("--no-install", action="store_true", help="do not install missing extras")
    p.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    p.add_argument("--quick", action="store_true", help="short runs for development (not saved)")
    args = p.parse_args(argv)
    if args.quick:
        args.inproc_seconds, args.http_seconds, args.warmup_seconds = 2.0, 3, 1
        args.quiet_wait = 0.0
        args.no_save = True
    return args


def wanted(args: argparse.Namespace, name: str) -> bool:
    keep = {s.strip() for s in args.systems.split(",") if s.strip()}
    return not keep or name in keep


# ---------------------------------------------------------------- formatting
def fmt_ns(ns: float) -> str:
    if ns is None or math.isnan(ns):
        return "-"
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.1f} µs"
    return f"{ns / 1_000_000:.2f} ms"


def fmt_rate(x: float) -> str:
    if x is None or math.isnan(x):
        return "-"
    return f"{x:,.0f}"


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """rolebook decisions/s ÷ this row's decisions/s, for the same mode."""
    ours = {r["mode"]: r["decisions_per_s"] for r in rows if r["system"] == "rolebook"}
    for r in rows:
        mine = ours.get(r["mode"])
        if r["system"] == "rolebook" or mine is None or not r["decisions_per_s"]:
            r["rolebook_ratio"] = None
        else:
            r["rolebook_ratio"] = mine / r["decisions_per_s"]


def render_table(rows: list[dict[str, Any]]) -> str:
    head = [
        "system",
        "mode",
        "decisions/s",
        "p50",
        "p99",
        "cores used",
        "dec/s/core",
        "others",
        "rolebook x",
    ]
    body = []
    for r in rows:
        cores = f"{r['cores']:.2f}"
        if r.get("client_cores") is not None:
            cores += f" + wrk {r['client_cores']:.2f}"
        ratio = r.get("rolebook_ratio")
        body.append(
            [
                r["system"],
                r["mode"],
                fmt_rate(r["decisions_per_s"]),
                fmt_ns(r["p50_ns"]),
                fmt_ns(r["p99_ns"]),
                cores,
                fmt_rate(r["decisions_per_s"] / r["cores"] if r["cores"] else float("nan")),
                f"{r['other_cores']:.2f}" + ("!" if r["other_cores"] >= NOISY else " "),
                "-" if ratio is None else f"{ratio:.2f}x",
            ]
        )
    widths = [max([len(h)] + [len(b[i]) for b in body]) for i, h in enumerate(head)]
    right = {2, 3, 4, 6, 7, 8}

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
        )

    out = [line(head), "  ".join("-" * w for w in widths)]
    out.extend(line(b) for b in body)
    return "\n".join(out)


NOISY = 0.3  # cores used by other processes during a run above which its row is flagged


def quiet(args: argparse.Namespace) -> None:
    if args.quiet_wait <= 0:
        return
    t0 = time.monotonic()
    busy = loopback.wait_for_quiet(args.quiet_wait, NOISY)
    waited = time.monotonic() - t0
    if busy >= NOISY:
        print(f"    (machine still busy: {busy:.2f} cores used by others after {waited:.0f}s)")


# ---------------------------------------------------------------- in process
def run_inproc(args: argparse.Namespace, work: Workload, report: dict[str, Any]) -> None:
    print("\n== in process, single thread ==", flush=True)
    builders: list[tuple[str, Callable[[], inproc.System]]] = [
        ("reference", inproc.reference_system),
        ("rolebook", inproc.rolebook_system),
        ("cedar", lambda: inproc.cedar_system(work.users)),
        ("casbin", lambda: inproc.casbin_system(work.users)),
    ]
    exhaustive = inproc.model_checks(work.users)
    for name, build in builders:
        if not wanted(args, name):
            continue
        try:
            system = build()
        except inproc.Unavailable as exc:
            print(f"{name}: SKIPPED: {exc}")
            report["skipped"].append({"system": name, "mode": "in-process", "reason": str(exc)})
            continue
        report["versions"][name] = system.version
        native_ex = system.prepare(exhaustive)
        ex = inproc.agreement(system, native_ex, exhaustive, 60)
        t0 = time.monotonic()
        native = system.prepare(work.checks)
        prep_s = time.monotonic() - t0
        ag = inproc.agreement(system, native, work.checks, args.agree_seconds)
        verdict = "agrees" if ex.ok and ag.ok else "DISAGREES"
        print(
            f"{name:9s} {verdict}: model {ex.agreed}/{ex.checked}, workload {ag.agreed}/"
            f"{ag.checked} ({100 * ag.agreed / max(ag.checked, 1):.2f}%)"
            f"{'' if ag.complete else ' [agreement pass hit its time budget]'}"
            f" in {ag.seconds:.1f}s (requests prepared in {prep_s:.1f}s, untimed)",
            flush=True,
        )
        for m in (ex.first_mismatches + ag.first_mismatches)[:5]:
            print(f"    mismatch: {m}")
        report["agreement"][f"{name}/in-process"] = {
            "model_checks": ex.checked,
            "model_agreed": ex.agreed,
            "workload_checked": ag.checked,
            "workload_agreed": ag.agreed,
            "complete": ag.complete,
            "mismatches": ex.first_mismatches + ag.first_mismatches,
        }
        if not (ex.ok and ag.ok):
            print(f"    {name}: timing ABORTED because it disagrees with the reference")
            report["skipped"].append(
                {"system": name, "mode": "in-process", "reason": "disagrees with the reference"}
            )
            continue
        quiet(args)
        t = inproc.time_system(system, native, args.inproc_seconds)
        print(
            f"    timed {t.decisions:,} decisions in {t.seconds:.2f}s: {fmt_rate(t.per_s)}/s, "
            f"p50 {fmt_ns(t.p50_ns)}, p99 {fmt_ns(t.p99_ns)} per decision",
            flush=True,
        )
        report["rows"].append(
            {
                "system": name,
                "mode": "in-process",
                "decisions_per_s": t.per_s,
                "p50_ns": t.p50_ns,
                "p99_ns": t.p99_ns,
                "latency_of": f"one decision (batches of {inproc.BATCH}, time / size)",
                "cores": t.cores,
                "client_cores": None,
                "other_cores": t.other_cores,
                "decisions": t.decisions,
                "seconds": t.seconds,
                "note": system.note,
            }
        )


# ---------------------------------------------------------------- over HTTP
def run_server(
    args: argparse.Namespace,
    work: Workload,
    wrk: str,
    name: str,
    start: Callable[[], loopback.Server],
    report: dict[str, Any],
) -> None:
    try:
        server = start()
    except loopback.NotAvailable as exc:
        print(f"SKIPPED: {exc}")
        report["skipped"].append({"system": name, "mode": "http", "reason": str(exc)})
        return
    try:
        if not loopback.wait_ready(server):
            raise loopback.NotAvailable(f"{name} did not start:\n{loopback.log_tail(server.log)}")
        report["versions"][f"{name}-server"] = server.version
        for note in server.notes:
            print(f"note: {note}")
            report["notes"].append(f"{name}: {note}")
        shapes = {
            1: [[c] for c in work.checks[: loopback.SINGLE_BODIES]],
            loopback.BATCH: loopback.group_by_principal(
                work.checks, loopback.BATCH, loopback.BATCH_BODIES
            ),
        }
        ok = True
        for per, groups in shapes.items() if server.decides else ():
            v = loopback.verify(server, groups, 200 if per == 1 else 20, args.seed)
            print(
                f"{name} {per}/request: sample of {v.requests} requests, "
                f"{v.agreed}/{v.decisions} decisions agree with the reference",
                flush=True,
            )
            for p in v.problems:
                print(f"    problem: {p}")
            report["agreement"][f"{name}/http {per}/req"] = {
                "requests": v.requests,
                "decisions": v.decisions,
                "agreed": v.agreed,
                "problems": v.problems,
            }
            ok = ok and v.ok
        if not ok:
            print(f"    {name}: HTTP timing ABORTED because it disagrees with the reference")
            print("    server log tail:\n" + loopback.log_tail(server.log, 20))
            report["skipped"].append(
                {"system": name, "mode": "http", "reason": "disagrees with the reference"}
            )
            return
        for per, groups in shapes.items():
            bodies = server.workdir / f"bodies-{per}.jsonl"
            loopback.write_bodies(server, groups, bodies)
            if args.warmup_seconds > 0:
                loopback.run_wrk(wrk, server, bodies, per, 32, args.warmup_seconds)
            for conns in (1, 32):
                if not server.alive():
                    raise loopback.NotAvailable(f"{name} exited:\n{loopback.log_tail(server.log)}")
                quiet(args)
                r = loopback.run_wrk(wrk, server, bodies, per, conns, args.http_seconds)
                errors = sum(r.errors.values())
                print(
                    f"{name} {per}/req c={conns}: {fmt_rate(r.requests_per_s)} req/s = "
                    f"{fmt_rate(r.decisions_per_s)} decisions/s, p50 {fmt_ns(r.p50_ns)}, "
                    f"p99 {fmt_ns(r.p99_ns)} per request, server {r.server_cores:.2f} cores, "
                    f"wrk {r.wrk_cores:.2f}, others {r.other_cores:.2f}"
                    + (f", ERRORS {r.errors}" if errors else ""),
                    flush=True,
                )
                report["rows"].append(
                    {
                        "system": name,
                        "mode": f"http {per}/req c={conns}",
                        "decisions_per_s": r.decisions_per_s,
                        "p50_ns": r.p50_ns,
                        "p99_ns": r.p99_ns,
                        "latency_of": "one request round trip (wrk)",
                        "cores": r.server_cores,
                        "client_cores": r.wrk_cores,
                        "other_cores": r.other_cores,
                        "decisions": r.requests * per,
                        "requests": r.requests,
                        "requests_per_s": r.requests_per_s,
                        "seconds": r.seconds,
                        "errors": r.errors,
                        "note": "; ".join(server.notes),
                    }
                )
    except (loopback.NotAvailable, RuntimeError, OSError) as exc:
        print(f"{name}: HTTP part stopped: {exc}")
        report["skipped"].append({"system": name, "mode": "http", "reason": str(exc)})
    finally:
        server.stop()


def run_http(args: argparse.Namespace, work: Workload, report: dict[str, Any]) -> None:
    print("\n== over HTTP on 127.0.0.1 (wrk) ==", flush=True)
    wrk = extras.ensure_wrk() if not args.no_install else shutil.which("wrk")
    if not wrk:
        report["skipped"].append({"system": "*", "mode": "http", "reason": "wrk not available"})
        return
    report["versions"]["wrk"] = extras.tool_version([wrk, "--version"])
    extra = shlex.split(args.rolebook_args)
    if wanted(args, "rolebook"):
        print("-- rolebook serve", flush=True)
        run_server(
            args, work, wrk, "rolebook",
            lambda: loopback.start_rolebook(args.workers, extra), report,
        )
    granian = granian_missing()
    for name in ("rolebook-granian", "floor-waitress", "floor-granian"):
        if not wanted(args, name):
            continue
        if granian and name.endswith("granian"):
            print(f"-- {name}: SKIPPED: {granian}")
            report["skipped"].append({"system": name, "mode": "http", "reason": granian})
            continue
        print(f"-- {name}", flush=True)
        if name == "rolebook-granian":
            start = lambda: loopback.start_rolebook(  # noqa: E731
                args.workers, [*extra, "--server", "granian"], name="rolebook-granian")
        else:
            start = lambda name=name: loopback.start_floor(name.removeprefix("floor-"))  # noqa: E731
        run_server(args, work, wrk, name, start, report)
    if wanted(args, "cerbos"):
        print("-- Cerbos PDP", flush=True)
        binary = extras.ensure_cerbos() if not args.no_install else extras.CERBOS_BIN
        if binary is None or not binary.is_file():
            print("SKIPPED: no Cerbos binary")
            report["skipped"].append({"system": "cerbos", "mode": "http", "reason": "no binary"})
        else:
            run_server(args, work, wrk, "cerbos", lambda: loopback.start_cerbos(binary), report)


def granian_missing() -> str | None:
    from rolebook.api.granian_server import missing

    return missing()


def compare(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each rolebook server against Cerbos (the issue's targets) and against its own floor, per
    mode: throughput ratio, p50 ratio (Cerbos's / ours: above 1 is better), p99 ratio (ours /
    Cerbos's: below 1 is better), and the share of the floor's requests/s rolebook serves."""
    by = {(r["system"], r["mode"]): r for r in rows}
    out = []
    for system, floor in (("rolebook", "floor-waitress"), ("rolebook-granian", "floor-granian")):
        for (name, mode), ours in by.items():
            if name != system or mode == "in-process":
                continue
            cerbos, base = by.get(("cerbos", mode)), by.get((floor, mode))
            out.append({
                "system": system, "mode": mode,
                "x_cerbos": cerbos and ours["decisions_per_s"] / cerbos["decisions_per_s"],
                "p50_better": cerbos and cerbos["p50_ns"] / ours["p50_ns"],
                "p99_vs_cerbos": cerbos and ours["p99_ns"] / cerbos["p99_ns"],
                "of_floor": base and ours["decisions_per_s"] / base["decisions_per_s"],
            })
    return out


def render_comparison(comparison: list[dict[str, Any]]) -> str:
    def ratio(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    head = ["system", "mode", "dec/s vs cerbos", "p50 better by", "p99 / cerbos's",
            "of its floor"]
    body = [[c["system"], c["mode"], ratio(c["x_cerbos"]), ratio(c["p50_better"]),
             ratio(c["p99_vs_cerbos"]), "-" if c["of_floor"] is None else
             f"{100 * c['of_floor']:.0f}%"] for c in comparison]
    widths = [max([len(h)] + [len(b[i]) for b in body]) for i, h in enumerate(head)]
    lines = ["  ".join(c.rjust(widths[i]) if i > 1 else c.ljust(widths[i])
                       for i, c in enumerate(cells)) for cells in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def git_state() -> dict[str, Any]:
    """The commit measured, and which files under engine/ api/ policies/ differ from it."""

    def git(*a: str) -> str:
        try:
            proc = subprocess.run(
                ["git", *a], cwd=HERE.parent, capture_output=True, text=True, timeout=20
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return proc.stdout.strip()

    changed = git("status", "--porcelain", "--", "engine", "api", "storage", "policies")
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted": changed.splitlines()}


# ---------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    report: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "executable": sys.executable,
            "loadavg_at_start": os.getloadavg(),
        },
        "settings": {k: v for k, v in vars(args).items()},
        "versions": {},
        "agreement": {},
        "rows": [],
        "skipped": [],
        "notes": [],
    }
    report["git"] = git_state()
    if not args.no_install:
        for key, problem in extras.ensure_pip().items():
            report["notes"].append(f"{key}: {problem}")
    if args.checks < DEFAULT_CHECKS:
        print(f"note: --checks {args.checks} is below the issue's {DEFAULT_CHECKS:,}")

    t0 = time.monotonic()
    work = generate(args.checks, args.seed)
    mix = work.mix()
    print(
        f"workload: {len(work.checks):,} checks, seed {work.seed}, digest {work.digest()}, "
        f"{100 * sum(c.expected for c in work.checks) / len(work.checks):.1f}% allowed, "
        f"generated in {time.monotonic() - t0:.1f}s"
    )
    groups = {"product": ("report", "object"), "member": ("member",), "billing+account": ()}
    shares = {g: 0 for g in groups}
    for key, n in mix.items():
        kind = key.split(":")[0]
        g = next((g for g, kinds in groups.items() if kind in kinds), "billing+account")
        shares[g] += n
    total = len(work.checks)
    print("  mix: " + ", ".join(f"{g} {100 * n / total:.0f}%" for g, n in shares.items()))
    report["workload"] = {
        "checks": len(work.checks),
        "seed": work.seed,
        "digest": work.digest(),
        "users": len(work.users),
        "mix": mix,
    }

    if args.only in (None, "inproc"):
        run_inproc(args, work, report)
    if args.only in (None, "http"):
        run_http(args, work, report)

    add_ratios(report["rows"])
    report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["machine"]["loadavg_at_end"] = os.getloadavg()
    print("\n== results ==")
    print(render_table(report["rows"]))
    print(
        "p50/p99: in-process = per decision (batches of 100 timed, divided by 100); "
        "http = per request round trip.\n"
        "cores used: server process tree (in-process: this Python process) + wrk; others: "
        f"the rest of the machine meanwhile; '!' = above {NOISY} cores, the row is noisy.\n"
        "rolebook x = rolebook decisions/s ÷ that row's decisions/s in the same mode."
    )
    report["comparison"] = compare(report["rows"])
    if report["comparison"]:
        print("\n== against Cerbos and the stack floor (same run) ==")
        print(render_comparison(report["comparison"]))
        print("of its floor: rolebook's requests/s ÷ the constant-answer app's on the same "
              "server, workers and threads.")
    for s in report["skipped"]:
        print(f"skipped: {s['system']} ({s['mode']}): {s['reason'].splitlines()[0]}")
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report, indent=2, default=str) + "\n")
        tmp.replace(path)
        print(f"wrote {path.relative_to(HERE.parent)}")
    return 0
