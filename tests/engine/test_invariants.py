"""Property-based invariants of both shipped policies, over generated principals and facts
(including facts the caller left out): nobody raises their own rank, nobody grants above their
own rank, and the only owner can neither leave, be removed, nor step down."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rolebook.engine import load_snapshot
from tests.support.policies import POLICY_DIR

POLICIES = load_snapshot(POLICY_DIR).all()
MEMBER_FACTS = ("target_user_id", "target_role", "new_role", "owner_count", "is_self")


@st.composite
def situations(draw, policy):
    """A principal and the member facts the service would fill, minus some it may have lost."""
    role = draw(st.sampled_from(policy.roles))
    pid = draw(st.text(min_size=1, max_size=8))
    is_self = draw(st.booleans())
    attr = {
        "target_user_id": pid if is_self else draw(st.text(max_size=8)),
        "target_role": role if is_self else draw(st.sampled_from(policy.roles)),
        "new_role": draw(st.sampled_from(policy.roles)),
        "owner_count": draw(st.integers(min_value=0, max_value=6)),
        "is_self": is_self,
    }
    dropped = draw(st.sets(st.sampled_from(MEMBER_FACTS)))
    return pid, role, attr, dropped


def without(attr: dict, dropped: set, keep: tuple) -> dict:
    return {k: v for k, v in attr.items() if k not in dropped or k in keep}


def each_policy(test):
    return pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.ref)(test)


@each_policy
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_nobody_raises_their_own_rank(policy, data):
    pid, role, attr, dropped = data.draw(situations(policy))
    attr.update(is_self=True, target_user_id=pid, target_role=role)
    facts = without(attr, dropped, ("is_self", "new_role"))
    if policy.ranks[attr["new_role"]] > policy.ranks[role]:
        decision = policy.check(pid, role, "member", "update_role", facts, pid)
        assert decision.effect == "deny", decision


@each_policy
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_nobody_grants_a_role_above_their_own(policy, data):
    pid, role, attr, dropped = data.draw(situations(policy))
    facts = without(attr, dropped, ("new_role",))
    if policy.ranks[attr["new_role"]] > policy.ranks[role]:
        assert policy.check(pid, role, "member", "update_role", facts).effect == "deny"
        invitation = {"role": attr["new_role"]}
        for action in ("create", "resend"):
            assert policy.check(pid, role, "invitation", action, invitation).effect == "deny"


@each_policy
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_the_only_owner_stays_an_owner(policy, data):
    pid, role, attr, dropped = data.draw(situations(policy))
    owner, least = policy.membership.owner_role, policy.membership.min_owners
    attr.update(target_role=owner, owner_count=min(attr["owner_count"], least))
    facts = without(attr, dropped, ("target_role", "owner_count", "new_role"))
    for action in ("leave", "remove"):
        assert policy.check(pid, role, "member", action, facts).effect == "deny"
    if attr["new_role"] != owner:
        assert policy.check(pid, role, "member", "update_role", facts).effect == "deny"


@each_policy
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_answers_are_pure_and_cite_their_policy(policy, data):
    pid, role, attr, dropped = data.draw(situations(policy))
    facts = without(attr, dropped, ())
    for action in policy.kinds["member"]:
        first = policy.check(pid, role, "member", action, dict(facts))
        again = policy.check(pid, role, "member", action, dict(facts))
        assert first == again
        assert first.rule.startswith(policy.ref + "#")
        assert policy.explain(pid, role, "member", action, dict(facts))[0] == first
