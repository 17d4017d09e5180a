"""`rolebook policy validate|test|matrix|diff`: the administrator's tools for policy files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rolebook.api.config import add_arguments, from_arguments

# The engine (and jsonschema) load when a command runs, not when `--help` is printed.


def register(sub) -> None:
    policy = sub.add_parser("policy", help="validate, test, tabulate and compare policy files")
    commands = policy.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check policy files and test suites")
    validate.add_argument("path", nargs="?", default=None, metavar="PATH",
                          help="one policy file or folder to check (default: the policy folder)")
    add_arguments(validate, ("policy_dir",))
    validate.set_defaults(run=run_validate)

    test = commands.add_parser("test", help="run the policies' *_test.yaml suites")
    test.add_argument("path", nargs="?", default=None, metavar="PATH",
                      help="one policy's folder or one suite file to run (default: every suite "
                      "in the policy folder)")
    add_arguments(test, ("policy_dir",))
    test.add_argument("--coverage", action="store_true", help="list rules no test exercised")
    test.add_argument("-v", "--verbose", action="store_true", help="print every passing case")
    test.set_defaults(run=run_test)

    matrix = commands.add_parser("matrix", help="the role by kind/action table of a version")
    matrix.add_argument("ref", metavar="NAME[@VERSION]",
                        help="the policy, and a version (default: its highest)")
    add_arguments(matrix, ("policy_dir",))
    matrix.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                        help="output format (default: text)")
    matrix.set_defaults(run=run_matrix)

    diff = commands.add_parser("diff", help="every case whose decision differs between versions")
    diff.add_argument("a", metavar="NAME@A", help="the version to compare from")
    diff.add_argument("b", metavar="NAME@B", help="the version to compare to")
    add_arguments(diff, ("policy_dir",))
    diff.set_defaults(run=run_diff)

    publish = commands.add_parser(
        "publish", help="validate and test a policy folder, then store its new versions in the "
        "database for replicas serving --policy-source database")
    publish.add_argument("path", nargs="?", default=None, metavar="PATH",
                         help="the policy folder to publish (default: the policy folder)")
    publish.add_argument("--by", metavar="NAME", help="who publishes, for the audit trail "
                         "(default: <user>@<host>)")
    add_arguments(publish, ("policy_dir", "database_url", "data_dir"))
    publish.set_defaults(run=run_publish)

    activate = commands.add_parser(
        "activate", help="make a published version the active one on every replica (an older "
        "one is the rollback)")
    activate.add_argument("ref", metavar="NAME@VERSION", help="the published version")
    activate.add_argument("--by", metavar="NAME", help="who activates, for the audit trail "
                          "(default: <user>@<host>)")
    add_arguments(activate, ("database_url", "data_dir"))
    activate.set_defaults(run=run_activate)

    impact = commands.add_parser(
        "impact", help="replay a decision log against a candidate version: which decisions "
        "would flip; exit 1 when any does")
    impact.add_argument("ref", metavar="NAME@CANDIDATE", help="the candidate version")
    add_arguments(impact, ("policy_dir", "data_dir"))
    impact.add_argument("--log", metavar="FILE|-", default=None,
                        help="the decision log to replay, or - for standard input "
                        "(default: decisions.log in the data dir)")
    impact.add_argument("--since", metavar="TIME", default=None,
                        help="only decisions at or after TIME: ISO-8601 (2026-12-01T00:00:00Z) "
                        "or an age such as 30m, 24h, 7d (default: the whole log)")
    impact.add_argument("--json", action="store_true", help="print the report as JSON")
    impact.set_defaults(run=run_impact)


def policy_dir(args) -> str:
    return from_arguments(args).policy_dir


def _print_problems(problems, stream=None) -> None:
    for problem in problems:
        print(problem, file=stream or sys.stdout)


def run_validate(args) -> int:
    policies = _validated(Path(args.path or policy_dir(args)))
    if policies is None:
        return 1
    for policy in policies:
        print(f"{policy.ref} {policy.digest}")
    return 0


def _validated(path: Path) -> list | None:
    """The policies of `path`, or None after printing every problem (file:line:col)."""
    from rolebook.engine import build_files, policy_files

    files = policy_files(path) if path.exists() else []
    if not files:
        print(f"{path}:1:1: $: no policy files found (expected <name>/v<N>.yaml) [parse]")
        return None
    outcomes = build_files(files)
    problems = [p for o in outcomes for p in o.problems]
    policies = [o.policy for o in outcomes if o.policy is not None]
    if path.is_dir():
        problems += _suite_problems(path, policies, {Path(o.file).parent.name
                                                     for o in outcomes if o.problems})
    _print_problems(problems)
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return None
    return policies


def _suite_problems(path: Path, policies, broken: set[str]) -> list:
    """Suites are checked against the policies that built; a broken policy's suites wait."""
    from rolebook.engine import Snapshot, testing

    snapshot, problems = Snapshot(policies), []
    for file in testing.locate(path)[1]:
        suite, found = testing.load_suite(file)
        if suite is not None and suite.data["policy"] not in broken:
            found = testing.check_suite(suite, snapshot)[1]
        problems += found
    return problems


def _load(where: str | Path | list[Path]):
    """A Snapshot of a policy folder (or of the given files); None after printing why not."""
    from rolebook.engine import PolicyLoadError, Snapshot, build_files, load_snapshot

    try:
        if not isinstance(where, list):
            return load_snapshot(where)
        outcomes = build_files(where)
        problems = [p for o in outcomes for p in o.problems]
        if problems:
            raise PolicyLoadError(problems)
        return Snapshot(o.policy for o in outcomes)
    except PolicyLoadError as exc:
        _print_problems(exc.problems, sys.stderr)
        return None


def _tested_policies(path: str | None, root: Path) -> Path | list[Path]:
    """Testing one policy (its folder, or one of its suites) loads that policy alone, so a
    broken neighbour does not fail it."""
    if path is None:
        return root
    folder = Path(path)
    if folder.is_file():
        folder = folder.resolve().parent.parent
    elif folder.name == "tests":
        folder = folder.parent
    versions = sorted(folder.glob("v*.y*ml"))
    return versions or root


def run_test(args) -> int:
    from rolebook.engine import testing

    root, files = testing.locate(args.path or policy_dir(args))
    snapshot = _load(_tested_policies(args.path, root))
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


def _get(snapshot, ref: str, need_version: bool = False):
    name, version = _split(ref, need_version)
    try:
        return snapshot.get(name, version)
    except KeyError:
        loaded = ", ".join(p.ref for p in snapshot.all())
        print(f"rolebook: {ref} is not loaded (loaded: {loaded})", file=sys.stderr)
        return None


def run_matrix(args) -> int:
    from rolebook.engine import matrix

    snapshot = _load(policy_dir(args))
    policy = snapshot and _get(snapshot, args.ref)
    if policy is None:
        return 1
    print(matrix.render(matrix.table(policy), args.format))
    return 0


def run_diff(args) -> int:
    from rolebook.engine import diff

    snapshot = _load(policy_dir(args))
    if snapshot is None:
        return 1
    a, b = _get(snapshot, args.a, True), _get(snapshot, args.b, True)
    if a is None or b is None:
        return 1
    result = diff.diff(a, b)
    print(diff.render(result, a, b))
    return 1 if result.changes or result.settings else 0  # like diff(1): 1 when they differ


def _since(text: str | None) -> str | None:
    """An ISO-8601 UTC time in the log's own form, so lines compare as strings."""
    from datetime import UTC, datetime, timedelta

    from rolebook.api.config import duration_seconds

    if text is None:
        return None
    try:
        moment = datetime.now(UTC) - timedelta(seconds=duration_seconds(text))
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise SystemExit(f"rolebook: --since {text!r}: give an ISO-8601 time or an age "
                             "such as 24h") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def run_impact(args) -> int:
    import json

    from rolebook.engine import impact

    since = _since(args.since)
    snapshot = _load(policy_dir(args))
    candidate = snapshot and _get(snapshot, args.ref, True)
    if candidate is None:
        return 2
    if args.log == "-":
        report = impact.replay(sys.stdin.buffer, candidate, since)
    else:
        log = Path(args.log) if args.log else from_arguments(args).data_path / "decisions.log"
        try:
            with open(log, "rb") as lines:
                report = impact.replay(lines, candidate, since)
        except OSError as exc:
            print(f"rolebook: cannot read the decision log {log}: {exc.strerror}",
                  file=sys.stderr)
            return 2
    print(json.dumps(report.as_dict(), indent=2) if args.json else impact.render(report))
    return 1 if report.flipped else 0


def _actor(args) -> str:
    if args.by:
        return args.by
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def _store(config):
    """The database the servers share; None after saying which setting to fix."""
    from pony.orm.dbapiprovider import DBException

    from rolebook.api.config import BY_NAME
    from rolebook.storage import Store

    try:
        return Store(config.effective_database_url)
    except (ValueError, DBException) as exc:
        s = BY_NAME["database_url"]
        print(f"rolebook: cannot open the database ({s.flag} / {s.env}): {str(exc).strip()}",
              file=sys.stderr)
        return None


def run_publish(args) -> int:
    from rolebook.engine import Snapshot, testing
    from rolebook.storage.policies import VersionChanged

    config = from_arguments(args)
    path = Path(args.path or config.policy_dir)
    policies = _validated(path)
    if policies is None:
        print("rolebook: nothing published", file=sys.stderr)
        return 1
    report = testing.run(testing.locate(path)[1], Snapshot(policies))
    _print_problems(report.problems)
    for case in report.cases:
        if not case.passed:
            print(case.describe())
    if report.failed or report.problems:
        print(f"rolebook: {report.failed} test case(s) failed: nothing published",
              file=sys.stderr)
        return 1
    store = _store(config)
    if store is None:
        return 1
    try:
        outcomes = store.policies.publish(
            [{"name": p.name, "version": p.version, "digest": p.digest, "source": p.source}
             for p in policies], _actor(args))
    except VersionChanged as exc:
        for changed in exc.changed:
            print(f"rolebook: {changed['name']}@{changed['version']} is already published with "
                  f"digest {changed['published']}; this folder has {changed['digest']}. "
                  "Published versions never change: publish it as a new version.",
                  file=sys.stderr)
        print("rolebook: nothing published", file=sys.stderr)
        return 1
    finally:
        store.close()
    for o in outcomes:
        note = " (now active)" if o["activated"] else ""
        print(f"{o['outcome']} {o['name']}@{o['version']} {o['digest']}{note}")
    return 0


def run_activate(args) -> int:
    from rolebook.storage import NotFound

    config = from_arguments(args)
    name, version = _split(args.ref, True)
    store = _store(config)
    if store is None:
        return 1
    try:
        done = store.policies.activate(name, version, _actor(args))
    except NotFound as exc:
        print(f"rolebook: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        store.close()
    was = done["previous"]
    before = f" (was {name}@{was['version']})" if was else ""
    print(f"{done['outcome']} {name}@{version} {done['digest']}{before}")
    return 0
