"""`rolebook policy validate|test|matrix|diff`: the administrator's tools for policy files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rolebook.api.config import Config
from rolebook.engine import (
    PolicyLoadError,
    Snapshot,
    build_files,
    load_snapshot,
    policy_files,
    testing,
)
from rolebook.engine import diff as diffing
from rolebook.engine import matrix as matrices


def default_policy_dir() -> str:
    return os.environ.get("ROLEBOOK_POLICY_DIR", Config.policy_dir)


def register(sub) -> None:
    policy = sub.add_parser("policy", help="validate, test, tabulate and compare policy files")
    commands = policy.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check policy files and test suites")
    validate.add_argument("path", nargs="?", default=None,
                          help="a policy directory or file (default: the policy dir)")
    validate.set_defaults(run=run_validate)

    test = commands.add_parser("test", help="run the policies' *_test.yaml suites")
    test.add_argument("path", nargs="?", default=None,
                      help="a policy directory, one policy's folder, or a suite file")
    test.add_argument("--coverage", action="store_true", help="list rules no test exercised")
    test.add_argument("-v", "--verbose", action="store_true", help="print every passing case")
    test.set_defaults(run=run_test)

    matrix = commands.add_parser("matrix", help="the role by kind/action table of a version")
    matrix.add_argument("ref", metavar="NAME[@VERSION]")
    matrix.add_argument("--policy-dir", default=None)
    matrix.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    matrix.set_defaults(run=run_matrix)

    diff = commands.add_parser("diff", help="every case whose decision differs between versions")
    diff.add_argument("a", metavar="NAME@A")
    diff.add_argument("b", metavar="NAME@B")
    diff.add_argument("--policy-dir", default=None)
    diff.set_defaults(run=run_diff)


def _print_problems(problems, stream=None) -> None:
    for problem in problems:
        print(problem, file=stream or sys.stdout)


def run_validate(args) -> int:
    path = Path(args.path or default_policy_dir())
    files = policy_files(path) if path.exists() else []
    if not files:
        print(f"{path}:1:1: $: no policy files found (expected <name>/v<N>.yaml) [parse]")
        return 1
    outcomes = build_files(files)
    problems = [p for o in outcomes for p in o.problems]
    policies = [o.policy for o in outcomes if o.policy is not None]
    if path.is_dir():
        problems += _suite_problems(path, policies, {Path(o.file).parent.name
                                                     for o in outcomes if o.problems})
    _print_problems(problems)
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 1
    for policy in policies:
        print(f"{policy.ref} {policy.digest}")
    return 0


def _suite_problems(path: Path, policies, broken: set[str]) -> list:
    """Suites are checked against the policies that built; a broken policy's suites wait."""
    snapshot, problems = Snapshot(policies), []
    for file in testing.locate(path)[1]:
        suite, found = testing.load_suite(file)
        if suite is not None and suite.data["policy"] not in broken:
            found = testing.check_suite(suite, snapshot)[1]
        problems += found
    return problems


def _load(policy_dir: str | Path) -> Snapshot | None:
    try:
        return load_snapshot(policy_dir)
    except PolicyLoadError as exc:
        _print_problems(exc.problems, sys.stderr)
        return None


def run_test(args) -> int:
    root, files = testing.locate(args.path or default_policy_dir())
    snapshot = _load(root)
    if snapshot is None:
        print("0 passed, 1 failed")
        return 1
    report = testing.run(files, snapshot)
    _print_problems(report.problems)
    for case in report.cases:
        if not case.passed:
            print(case.describe())
        elif args.verbose:
            print(f"PASSED {case.suite} :: {case.test} :: {case.principal} {case.action} "
                  f"{case.resource} -> {case.expected}")
    if args.coverage:
        uncovered = report.uncovered()
        tested = ", ".join(sorted(report.tested)) or "none"
        print(f"coverage of {tested}: {len(uncovered)} rule(s) no test exercised")
        for rule in uncovered:
            print(f"  not exercised: {rule}")
        untested = [p.ref for p in snapshot.all() if p.ref not in report.tested]
        for ref in untested:
            print(f"  no suite tests {ref}")
    print(f"{len(files)} suite(s), {len(report.cases)} case(s)")
    print(f"{report.passed} passed, {report.failed} failed")
    return 1 if report.failed or not files else 0


def _split(ref: str, need_version: bool) -> tuple[str, int | None]:
    name, _, version = ref.partition("@")
    if version and not version.isdigit():
        raise SystemExit(f"rolebook: {ref!r}: the version must be an integer (NAME@VERSION)")
    if need_version and not version:
        raise SystemExit(f"rolebook: {ref!r}: give a version (NAME@VERSION)")
    return name, int(version) if version else None


def _get(snapshot: Snapshot, ref: str, need_version: bool = False):
    name, version = _split(ref, need_version)
    try:
        return snapshot.get(name, version)
    except KeyError:
        loaded = ", ".join(p.ref for p in snapshot.all())
        print(f"rolebook: {ref} is not loaded (loaded: {loaded})", file=sys.stderr)
        return None


def run_matrix(args) -> int:
    snapshot = _load(args.policy_dir or default_policy_dir())
    policy = snapshot and _get(snapshot, args.ref)
    if policy is None:
        return 1
    print(matrices.render(matrices.table(policy), args.format))
    return 0


def run_diff(args) -> int:
    snapshot = _load(args.policy_dir or default_policy_dir())
    if snapshot is None:
        return 1
    a, b = _get(snapshot, args.a, True), _get(snapshot, args.b, True)
    if a is None or b is None:
        return 1
    print(diffing.render(diffing.diff(a, b), a, b))
    return 0
