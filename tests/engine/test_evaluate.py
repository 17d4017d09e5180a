"""Evaluation contract: deny wins, no allow means deny, missing or ill-typed facts fail closed,
unknown names deny with a reason, every decision names policy@version#rule and the digest, and
explain reports each rule considered with the value of each condition."""

from __future__ import annotations

import pytest

SOLE_OWNER_STEPS_DOWN = {"target_user_id": "u_1", "target_role": "owner", "new_role": "edit",
                         "owner_count": 1, "is_self": True}


@pytest.fixture(scope="module")
def convert(snapshot):
    return snapshot.get("convert")


def test_deny_wins_over_an_unconditional_allow(convert):
    plan = convert.plans[("member", "update_role", "owner")]
    assert any(s.node is None and s.stage == "allow" for s in plan.steps)
    decision = convert.check("u_1", "owner", "member", "update_role", SOLE_OWNER_STEPS_DOWN)
    assert (decision.effect, decision.rule) == ("deny", "convert@1#keep-an-owner")
    assert decision.conflict


def test_no_matching_allow_is_a_default_deny(convert):
    decision = convert.check("u_1", "read", "billing", "view")
    assert decision.rule == "convert@1#default-deny"
    assert decision.reason == "no rule allows read to view billing"


def test_every_decision_names_its_policy_version_and_digest(convert):
    decision = convert.check("u_1", "owner", "billing", "view")
    assert (decision.policy, decision.version, decision.digest) == (
        "convert", 1, convert.digest)
    assert decision.as_dict() == {"effect": "allow", "rule": "convert@1#owners-manage-billing",
                                  "reason": "allowed by owners-manage-billing"}


@pytest.mark.parametrize("attr", [None, {}, {"target_role": "read", "new_role": "read"}])
def test_a_deny_rule_missing_its_facts_fails_closed(convert, attr):
    decision = convert.check("u_1", "edit", "member", "update_role", attr)
    assert decision.effect == "deny"
    assert "failing closed" in decision.reason


def test_an_allow_rule_missing_its_facts_does_not_allow(convert):
    decision = convert.check("u_1", "edit", "invitation", "create", {})
    assert decision.rule == "convert@1#default-deny"
    assert "attribute role is missing" in decision.reason


@pytest.mark.parametrize("attr", [
    {**SOLE_OWNER_STEPS_DOWN, "owner_count": "1"},
    {**SOLE_OWNER_STEPS_DOWN, "is_self": "true"},
    {**SOLE_OWNER_STEPS_DOWN, "new_role": "superuser"},
    {**SOLE_OWNER_STEPS_DOWN, "owner_count": True},
])
def test_ill_typed_facts_fail_closed(convert, attr):
    assert convert.check("u_1", "owner", "member", "update_role", attr).effect == "deny"


@pytest.mark.parametrize(("role", "kind", "action", "reason"), [
    ("admin", "billing", "view", "role 'admin' is not defined in convert@1"),
    ("owner", "spaceship", "view", "convert@1 defines no resource kind 'spaceship'"),
    ("owner", "billing", "launch", "convert@1 defines no action 'launch' on billing"),
])
def test_unknown_names_deny_with_a_reason(convert, role, kind, action, reason):
    decision = convert.check("u_1", role, kind, action)
    assert (decision.effect, decision.rule, decision.reason) == (
        "deny", "convert@1#default-deny", reason)


def test_unconditional_answers_are_shared_constants(convert):
    first = convert.check("u_1", "read", "report", "view")
    assert first is convert.check("u_2", "read", "report", "view", {"x": 1})


def test_check_batch_answers_every_action_of_every_resource(convert):
    out = convert.check_batch("u_1", "edit", [
        {"kind": "object", "id": "o1", "actions": ["view", "delete"]},
        {"kind": "invitation", "attr": {"role": "owner"}, "actions": ["create"]},
    ])
    assert [{a: d.effect for a, d in r.items()} for r in out] == [
        {"view": "allow", "delete": "allow"}, {"create": "deny"}]


def test_explain_lists_rules_considered_and_condition_values(convert):
    decision, trace = convert.explain("u_1", "owner", "member", "update_role",
                                      SOLE_OWNER_STEPS_DOWN)
    assert decision.rule == "convert@1#keep-an-owner"
    by_rule = {t["rule"]: t for t in trace}
    assert by_rule["convert@1#nobody-raises-own-role"]["matched"] is False
    assert by_rule["convert@1#keep-an-owner"]["matched"] is True
    assert by_rule["convert@1#owners-manage-members"]["matched"] is True
    values = {c["condition"]: c["value"]
              for c in by_rule["convert@1#keep-an-owner"]["conditions"]}
    assert values["resource.attr.owner_count <= membership.min_owners"] is True


def test_explain_reports_unevaluable_conditions(convert):
    _, trace = convert.explain("u_1", "edit", "invitation", "create", {})
    (entry,) = trace
    assert entry["matched"] is None
    assert entry["conditions"][0]["error"] == "attribute role is missing"
