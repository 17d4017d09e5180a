"""The generated fast path decides exactly as the closures it was generated from.

Contract: for every conditional plan of both shipped policies and of generated ones
(awkward attribute names, quoting literals, deep nesting), and for facts
drawn from each attribute's own type, other types, unknown roles, missing
facts and a missing resource id, the generated function returns a Decision
equal to `Plan.evaluate`'s (effect, rule, reason, conflict).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rolebook.engine import load_snapshot
from rolebook.engine.compiler import compile_policy
from rolebook.engine.loader import Source
from tests.support.policies import POLICY_DIR

POLICIES = load_snapshot(POLICY_DIR).all()
CONDITIONAL = [(policy, key) for policy in POLICIES for key, plan in policy.plans.items()
               if plan.generated is not None]
ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-3, 8), st.text(max_size=6),
                      st.floats(allow_nan=False), st.lists(st.integers(), max_size=2))


TYPED = {"integer": st.integers(-1, 6), "boolean": st.booleans(), "string": st.text(max_size=6)}
HOW = ("typed",) * 6 + ("anything", "missing")  # sampled_from draws these about uniformly


@st.composite
def facts(draw, policy, kind: str):
    """Mostly well-typed facts (so the fast path runs), some of any type, some missing."""
    attr = {}
    for name, type_ in policy.attributes[kind].items():
        how = draw(st.sampled_from(HOW))
        if how == "typed":
            attr[name] = draw(st.sampled_from(policy.roles) if type_ == "role" else TYPED[type_])
        elif how == "anything":
            attr[name] = draw(ANY_VALUE)
    rid = draw(st.one_of(st.none(), st.text(min_size=1, max_size=6)))
    return draw(st.text(min_size=1, max_size=6)), rid, attr


def test_there_are_conditional_plans_to_compare():
    assert len(CONDITIONAL) > 20


@pytest.mark.parametrize(("policy", "key"), CONDITIONAL,
                         ids=lambda v: v.ref if hasattr(v, "ref") else ".".join(v))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_generated_code_agrees_with_the_closures(policy, key, data):
    pid, rid, attr = data.draw(facts(policy, key[0]))
    plan = policy.plans[key]
    fast = plan.generated
    assert fast(pid, rid, dict(attr)) == plan.evaluate(pid, rid, dict(attr))
    assert fast(pid, rid, None) == plan.evaluate(pid, rid, None)


# Generated policies: the generator must hold beyond the two shipped ones, for attribute names
# that are not identifiers, string literals with quotes and backslashes, and deep nesting.
ROLES = ("r0", "r1", "r2")
AWKWARD = st.text(st.sampled_from("a_Z9 '\"\\\\-.é)("), min_size=1, max_size=6).filter(
    lambda s: s == s.strip())
LITERALS = {"string": st.text(st.sampled_from("ab'\"\\\\\n é"), max_size=5),
            "integer": st.integers(-2, 4), "boolean": st.booleans(), "role": st.sampled_from(ROLES)}


@st.composite
def conditions(draw, attributes: dict, depth: int = 0):
    """A well-typed condition tree over `attributes`, up to 5 levels of all/any/not."""
    if depth < 5 and draw(st.integers(0, 2)) == 0:
        op = draw(st.sampled_from(("all", "any", "not")))
        if op == "not":
            return {"not": draw(conditions(attributes, depth + 1))}
        return {op: draw(st.lists(conditions(attributes, depth + 1), min_size=1, max_size=3))}
    name, kind = draw(st.sampled_from(sorted(attributes.items())))
    ref = f"resource.attr.{name}"
    if kind == "role" and draw(st.booleans()):
        op = draw(st.sampled_from(("lt", "le", "gt", "ge", "eq")))
        return {op: [f"rank({ref})", draw(st.sampled_from(("principal.rank", "rank(r1)", 1)))]}
    if draw(st.booleans()):
        return {"in": [ref, draw(st.lists(LITERALS[kind], min_size=1, max_size=3))]}
    ops = ("eq", "ne", "lt", "ge") if kind == "integer" else ("eq", "ne")
    other = {"string": "principal.id", "role": "principal.role", "integer": "membership.min_owners",
             "boolean": {"literal": True}}[kind]
    right = draw(st.one_of(LITERALS[kind].map(lambda v: {"literal": v}), st.just(other)))
    return {draw(st.sampled_from(ops)): [ref, right]}


@st.composite
def policies(draw):
    names = draw(st.lists(AWKWARD, min_size=1, max_size=4, unique=True))
    attributes = {n: draw(st.sampled_from(sorted(LITERALS))) for n in names}
    rules = []
    for i in range(draw(st.integers(1, 6))):
        rule = {"name": f"rule-{i}", "actions": draw(st.sampled_from([["a"], ["b"], ["a", "b"]])),
                "effect": draw(st.sampled_from(("allow", "deny")))}
        if rule["effect"] == "deny" and draw(st.booleans()):
            rule["conflict"] = True
        if draw(st.booleans()):
            rule["min_role"] = draw(st.sampled_from(ROLES))
        if draw(st.integers(0, 3)):
            rule["when"] = draw(conditions(attributes))
        rules.append(rule)
    doc = {"name": "gen", "version": 1, "roles": [{"name": r} for r in ROLES],
           "membership": {"owner_role": "r2", "min_owners": 1, "email_accounts": "one",
                          "invitation_ttl_hours": 1},
           "resources": {"thing": {"attributes": attributes, "actions": ["a", "b"],
                                   "rules": rules}}}
    policy, problems = compile_policy(Source("gen/v1.yaml", "", doc))
    assert problems == []
    return policy


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_generated_code_agrees_with_the_closures_on_generated_policies(data):
    policy = data.draw(policies())
    for plan in policy.plans.values():
        if plan.generated is None:
            assert plan.constant is not None
            continue
        pid, rid, attr = data.draw(facts(policy, plan.kind))
        assert plan.generated(pid, rid, dict(attr)) == plan.evaluate(pid, rid, dict(attr))
        assert plan.generated(pid, rid, None) == plan.evaluate(pid, rid, None)
        assert policy.explain(pid, plan.role, plan.kind, plan.action, dict(attr), rid)[0] == \
            policy.check(pid, plan.role, plan.kind, plan.action, dict(attr), rid)
