"""How fast `rolebook policy impact` replays a decision log: 1,000,000 logged decisions.

The log is written by the service's own DecisionLog from the bench workload (the same seeded
checks as the main benchmark, 25% of them conditional member operations): half the decisions as
one-decision lines (what member operations log), half as ten-decision lines (a /v1/check with
several resources). Then `engine.impact.replay` re-decides every one against convert@1.

    .venv/bin/python -m bench.impact            # writes bench/results/impact-<time>.json
    .venv/bin/python -m bench.impact --decisions 100000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.workload import generate
from rolebook.api.decision_log import NONE, DecisionLog, resource_entry
from rolebook.engine import impact, load_snapshot

ROOT = Path(__file__).resolve().parents[1]


def write_log(folder: Path, decisions: int) -> Path:
    policy = load_snapshot(ROOT / "policies").get("convert")
    checks = generate(min(decisions, 100_000)).checks
    log = DecisionLog("file", folder, max_queued_bytes=1 << 40)
    head = {"decision_id": "bench", "caller": "bench", "account_id": "acc_bench",
            "policy": policy.ref, "digest": policy.digest, "latency_ns": 1000}
    written, i = 0, 0
    while written < decisions:
        size = 1 if written < decisions // 2 else 10
        batch = [checks[(i + k) % len(checks)] for k in range(size)]
        i += size
        c = batch[0]
        resources = [resource_entry(x.kind, x.resource_id, x.attr,
                                    {x.action: policy.check(c.principal_id, c.role, x.kind,
                                                            x.action, x.attr,
                                                            x.resource_id).view},
                                    policy.action_sets.get(x.kind, NONE))
                     for x in batch]
        log.record({**head, "principal": {"id": c.principal_id, "role": c.role}}, resources)
        written += size
    log.close()
    return log.path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.impact", description=__doc__)
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args(argv)
    candidate = load_snapshot(ROOT / "policies").get("convert")
    with tempfile.TemporaryDirectory() as folder:
        path = write_log(Path(folder), args.decisions)
        size = path.stat().st_size
        started = time.perf_counter()
        with open(path, "rb") as lines:
            report = impact.replay(lines, candidate)
        seconds = time.perf_counter() - started
    result = {"decisions": report.replayed, "lines": report.lines, "log_bytes": size,
              "seconds": round(seconds, 3),
              "decisions_per_second": round(report.replayed / seconds),
              "flipped": report.flipped, "broken": report.broken_count}
    print(json.dumps(result, indent=2))
    if not args.no_save:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = ROOT / "bench" / "results" / f"impact-{stamp}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"saved {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
