"""The shipped policy suites pass, exercise every rule, and cover every role-by-kind/action cell of
each shipped policy (both sides of every conditional cell); the runner reports failures usefully."""

from __future__ import annotations

from collections import defaultdict

import pytest

from rolebook.engine import matrix, testing
from tests.support.policies import POLICY_DIR

SUITES = testing.locate(POLICY_DIR)[1]


def test_every_shipped_policy_has_suites(snapshot):
    tested = {f.parent.parent.name for f in SUITES}
    assert tested == set(snapshot.versions)


@pytest.mark.parametrize("suite", SUITES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_shipped_suite_passes(snapshot, suite):
    report = testing.run([suite], snapshot)
    assert report.problems == []
    failures = [c.describe() for c in report.cases if not c.passed]
    assert not failures, "\n".join(failures)
    assert report.cases


def test_suites_exercise_every_rule(snapshot):
    report = testing.run(SUITES, snapshot)
    assert report.uncovered() == []
    assert set(report.tested) == {p.ref for p in snapshot.all()}


def test_suites_cover_every_cell_and_both_sides_of_conditional_ones(snapshot):
    report = testing.run(SUITES, snapshot)
    seen = defaultdict(set)
    for case in report.cases:
        p, r = case.facts["principal"], case.facts["resource"]
        seen[(case.decision.policy, r["kind"], case.action, p["role"])].add(case.decision.effect)
    for policy in snapshot.all():
        for (kind, action, role), plan in policy.plans.items():
            effects = seen[(policy.name, kind, action, role)]
            assert effects, f"{policy.ref}: no test of {role} {kind}.{action}"
            if matrix.cell(plan)["effect"] == "conditional":
                assert effects == {"allow", "deny"}, (
                    f"{policy.ref}: {role} {kind}.{action} is conditional; tested only {effects}")


def write_suite(dir_, text):
    path = dir_ / "convert" / "tests" / "broken_test.yaml"
    path.write_text(text)
    return path


def test_a_wrong_expectation_fails_with_the_deciding_rule(snapshot, policy_copy):
    path = write_suite(policy_copy, """
name: wrong
policy: convert
principals: {rita: {id: u_rita, role: read}}
resources: {billing: {kind: billing}}
tests:
  - name: read sees billing
    principals: [rita]
    resources: [billing]
    expected: {view: allow}
""")
    report = testing.run([path], snapshot)
    (case,) = report.cases
    assert not case.passed and report.failed == 1
    text = case.describe()
    assert "convert@1#default-deny" in text and "no rule allows read to view billing" in text
    assert "broken_test.yaml:7" in text


def test_suite_schema_and_name_problems_are_located(snapshot, policy_copy):
    path = write_suite(policy_copy, """
name: broken
policy: convert
principals: {rita: {id: u_rita, role: reader}}
resources: {billing: {kind: billing}}
tests:
  - name: refers to nobody
    principals: [ghost]
    resources: [billing]
    expected: {view: maybe}
""")
    report = testing.run([path], snapshot)
    assert [p.path for p in report.problems] == ["$.tests[0].expected.view"]
    path.write_text(path.read_text().replace("maybe", "deny"))
    report = testing.run([path], snapshot)
    assert sorted(p.message for p in report.problems) == [
        "convert@1 has no role 'reader'", "no principal named 'ghost' in this suite"]
    assert report.cases == []
