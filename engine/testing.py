"""Policy test suites (`policies/<name>/tests/*_test.yaml`): load, check and run them.

A suite names principals and resources once and lists tests that expect an
effect per action for every principal on every resource listed. Suites are
validated by their own JSON Schema, with line numbers, like policies are, and
run through the same `Policy.check` the service uses, so a passing suite
describes the running service.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from jsonschema import Draft202012Validator

from rolebook.engine.loader import Source, load_source
from rolebook.engine.model import Decision, Policy
from rolebook.engine.problems import PolicyProblem
from rolebook.engine.snapshot import Snapshot

SUITE_GLOB = "*_test.y*ml"


@cache
def _validator() -> Draft202012Validator:
    text = resources.files("rolebook.engine").joinpath("policy_test.schema.json").read_text()
    return Draft202012Validator(json.loads(text))


@dataclass
class Suite:
    source: Source

    @property
    def data(self) -> dict:
        return self.source.data

    @property
    def name(self) -> str:
        return self.data["name"]


@dataclass
class Case:
    """One expectation: one principal, one resource, one action."""

    suite: str
    test: str
    where: str
    principal: str
    resource: str
    action: str
    expected: str
    expected_rule: str | None
    decision: Decision
    facts: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        if self.decision.effect != self.expected:
            return False
        return self.expected_rule is None or self.expected_rule in (
            self.decision.rule, self.decision.rule.rsplit("#", 1)[-1]
        )

    def describe(self) -> str:
        p, r = self.facts["principal"], self.facts["resource"]
        rule = f" by rule {self.expected_rule}" if self.expected_rule else ""
        return "\n".join([
            f"FAILED {self.suite} :: {self.test} ({self.where})",
            f"  principal: {self.principal} {json.dumps(p)}",
            f"  resource:  {self.resource} {json.dumps(r)}",
            f"  action:    {self.action}",
            f"  expected:  {self.expected}{rule}",
            f"  actual:    {self.decision.effect} by rule {self.decision.rule}",
            f"  reason:    {self.decision.reason}",
        ])


@dataclass
class Report:
    cases: list[Case] = field(default_factory=list)
    problems: list[PolicyProblem] = field(default_factory=list)
    tested: dict[str, Policy] = field(default_factory=dict)

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.cases)

    @property
    def failed(self) -> int:
        return len(self.cases) - self.passed + len(self.problems)

    def uncovered(self) -> list[str]:
        """Rule ids of every tested policy version that decided no test case."""
        used = {c.decision.rule for c in self.cases}
        return [rule.id for policy in self.tested.values() for rule in policy.rules
                if rule.id not in used]  # in file order, including rules no plan can reach


def locate(path: str | Path) -> tuple[Path, list[Path]]:
    """The policy directory that `path` belongs to, and the suite files at or below it."""
    path = Path(path)
    if path.is_file():
        return path.resolve().parent.parent.parent, [path]
    if any(path.glob("v*.y*ml")):
        root = path.parent
    elif path.name == "tests":
        root = path.parent.parent
    else:
        root = path
    suites = sorted({*path.glob(SUITE_GLOB), *path.glob(f"tests/{SUITE_GLOB}"),
                     *path.glob(f"*/tests/{SUITE_GLOB}")})
    return root, suites


def load_suite(file: Path) -> tuple[Suite | None, list[PolicyProblem]]:
    """Parse and schema-check one suite file; every problem carries its line and JSON path."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [PolicyProblem(str(file), 1, 1, "$", f"cannot read: {exc}", "parse")]
    source, problems = load_source(str(file), text)
    if problems:
        return None, problems
    errors = sorted(_validator().iter_errors(source.data), key=lambda e: list(e.absolute_path))
    problems = [source.problem(tuple(e.absolute_path), e.message, "schema") for e in errors]
    if problems:
        return None, problems
    return Suite(source), []


def check_suite(suite: Suite, snapshot: Snapshot) -> tuple[Policy | None, list[PolicyProblem]]:
    """Names a schema cannot check: the policy, its roles, kinds and actions, fixture names."""
    doc, src = suite.data, suite.source
    try:
        policy = snapshot.get(doc["policy"], doc.get("version"))
    except KeyError:
        ref = doc["policy"] + (f"@{doc['version']}" if "version" in doc else "")
        key = "version" if doc["policy"] in snapshot.versions else "policy"
        return None, [src.problem((key,), f"policy {ref} is not loaded", "suite")]
    out = []
    for name, p in doc["principals"].items():
        if p["role"] not in policy.ranks:
            out.append(src.problem(("principals", name, "role"),
                                   f"{policy.ref} has no role {p['role']!r}", "suite"))
    for name, r in doc["resources"].items():
        if r["kind"] not in policy.kinds:
            out.append(src.problem(("resources", name, "kind"),
                                   f"{policy.ref} has no resource kind {r['kind']!r}", "suite"))
    for i, test in enumerate(doc["tests"]):
        for key in ("principals", "resources"):
            for j, name in enumerate(test[key]):
                if name not in doc[key]:
                    out.append(src.problem(("tests", i, key, j),
                                           f"no {key[:-1]} named {name!r} in this suite", "suite"))
        kinds = {doc["resources"][n]["kind"] for n in test["resources"] if n in doc["resources"]}
        for action in test["expected"]:
            for kind in kinds & set(policy.kinds):
                if action not in policy.kinds[kind]:
                    out.append(src.problem(("tests", i, "expected", action),
                                           f"{policy.ref} has no action {action!r} on {kind}",
                                           "suite"))
    return policy, out


def run_suite(suite: Suite, policy: Policy) -> list[Case]:
    doc, cases = suite.data, []
    for i, test in enumerate(doc["tests"]):
        line, _ = suite.source.where(("tests", i))
        where = f"{suite.source.file}:{line}"
        for pname in test["principals"]:
            principal = doc["principals"][pname]
            for rname in test["resources"]:
                resource = doc["resources"][rname]
                for action, want in test["expected"].items():
                    effect, rule = (want, None) if isinstance(want, str) else (
                        want["effect"], want.get("rule"))
                    decision = policy.check(principal["id"], principal["role"], resource["kind"],
                                            action, resource.get("attr"), resource.get("id"))
                    cases.append(Case(suite.name, test["name"], where, pname, rname, action,
                                      effect, rule, decision,
                                      {"principal": principal, "resource": resource}))
    return cases


def run(files: list[Path], snapshot: Snapshot) -> Report:
    """Load, check and run every suite; a broken suite reports problems and runs nothing."""
    report = Report()
    for file in files:
        suite, problems = load_suite(file)
        if suite is not None:
            policy, problems = check_suite(suite, snapshot)
            if policy is not None and not problems:
                report.tested[policy.ref] = policy
                report.cases += run_suite(suite, policy)
        report.problems += problems
    return report
