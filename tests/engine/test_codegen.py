"""The generated fast path decides exactly as the closures it was generated from.

Contract: for every conditional plan of both shipped policies, and for facts
drawn from each attribute's own type, other types, unknown roles, missing
facts and a missing resource id, the generated function returns a Decision
equal to `Plan.evaluate`'s (effect, rule, reason, conflict).
"""

from __future__ import annotations

import pytest
from conftest import POLICY_DIR
from hypothesis import given, settings
from hypothesis import strategies as st

from rolebook.engine import load_snapshot

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
