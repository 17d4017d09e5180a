"""`rolebook check [FILE|-]`: answer `/v1/check` bodies offline, one JSON line in, one out."""

from __future__ import annotations

import json
import os
import sys

from rolebook.api.config import Config
from rolebook.engine import PolicyLoadError, load_snapshot
from rolebook.engine.check_request import CheckRequestError, answer


def register(sub) -> None:
    check = sub.add_parser("check", help="answer /v1/check bodies from JSON lines, offline")
    check.add_argument("file", nargs="?", default="-", metavar="FILE|-")
    check.add_argument("--policy-dir", default=None)
    check.add_argument("--default-policy", default=None)
    check.add_argument("--explain", action="store_true", help="add each rule's condition values")
    check.set_defaults(run=run)


def run(args) -> int:
    policy_dir = args.policy_dir or os.environ.get("ROLEBOOK_POLICY_DIR", Config.policy_dir)
    default = args.default_policy or os.environ.get("ROLEBOOK_DEFAULT_POLICY",
                                                    Config.default_policy)
    try:
        snapshot = load_snapshot(policy_dir)
    except PolicyLoadError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    if args.file == "-":
        return _answer_lines(snapshot, sys.stdin, default, args.explain)
    try:
        with open(args.file, encoding="utf-8") as lines:
            return _answer_lines(snapshot, lines, default, args.explain)
    except OSError as exc:
        print(f"rolebook: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1


def _answer_lines(snapshot, lines, default: str, explain: bool) -> int:
    failed = False
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out = answer(snapshot, json.loads(line), default, explain)
        except json.JSONDecodeError as exc:
            out = {"error": {"line": number, "field": "$", "message": f"not JSON: {exc.msg}"}}
        except CheckRequestError as exc:
            out = {"error": {"line": number, "field": exc.field, "message": exc.message}}
        failed = failed or "error" in out
        print(json.dumps(out, separators=(",", ":")), flush=False)
    sys.stdout.flush()
    return 1 if failed else 0
