"""`rolebook check [FILE|-]`: answer `/v1/check` bodies offline, one JSON line in, one out."""

from __future__ import annotations

import json
import sys

from rolebook.api.config import add_arguments, from_arguments


def register(sub) -> None:
    check = sub.add_parser("check", help="answer /v1/check bodies from JSON lines, offline")
    check.add_argument("file", nargs="?", default="-", metavar="FILE|-",
                       help="JSON lines in the /v1/check shape (default: - for standard input)")
    add_arguments(check, ("policy_dir", "default_policy"))
    check.add_argument("--explain", action="store_true", help="add each rule's condition values")
    check.set_defaults(run=run)


def run(args) -> int:
    from rolebook.engine import PolicyLoadError, load_snapshot

    config = from_arguments(args)
    policy_dir, default = config.policy_dir, config.default_policy
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
    import orjson  # json.loads meets RecursionError on a line nested a thousand deep

    from rolebook.engine.check_request import CheckRequestError, answer

    failed = False
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out = answer(snapshot, orjson.loads(line), default, explain)
        except orjson.JSONDecodeError as exc:
            out = {"error": {"line": number, "field": "$", "message": f"not JSON: {exc.msg}"}}
        except CheckRequestError as exc:
            out = {"error": {"line": number, "field": exc.field, "message": exc.message}}
        failed = failed or "error" in out
        print(json.dumps(out, separators=(",", ":")), flush=False)
    sys.stdout.flush()
    return 1 if failed else 0
