"""The /v1/check answer contract shared by the HTTP endpoint and `rolebook check`: its shape,
defaults (policy, active version), explain traces, a CheckRequestError naming the bad field, and
one schema (limits, unknown keys) for both paths."""

from __future__ import annotations

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rolebook.api.contract import validator
from rolebook.engine.check_request import (
    CheckRequestError,
    _validator,
    answer,
    schema,
    validate,
)
from tests.support.json_shapes import JSON, shaped
from tests.support.policies import REPO

BODY = {"principal": {"id": "u_7", "role": "edit"}, "account_id": "acc_3",
        "policy": "convert", "policy_version": 1,
        "resources": [{"kind": "member", "id": "u_9",
                       "attr": {"target_role": "owner", "new_role": "edit", "owner_count": 2,
                                "is_self": False, "target_user_id": "u_9"},
                       "actions": ["update_role", "remove"]}]}


def test_the_spec_example_is_answered(snapshot):
    out = answer(snapshot, BODY, "convert")
    policy = snapshot.get("convert", 1)
    assert out == {
        "policy": "convert", "version": 1, "digest": policy.digest,
        "principal": {"id": "u_7", "role": "edit"},
        "results": [{"kind": "member", "id": "u_9", "actions": {
            "update_role": {"effect": "deny", "rule": "convert@1#default-deny",
                            "reason": "no rule allows edit to update_role member: "
                                      "anyone-lowers-own-role requires "
                                      "resource.attr.is_self == true; editors-manage-non-owners "
                                      "requires resource.attr.target_role != "
                                      "membership.owner_role"},
            "remove": {"effect": "deny", "rule": "convert@1#default-deny",
                       "reason": "no rule allows edit to remove member: "
                                 "editors-remove-non-owners requires "
                                 "resource.attr.target_role != membership.owner_role"},
        }}],
    }


def test_the_default_policy_and_active_version_apply(snapshot):
    body = {"principal": {"id": "u_1", "role": "manager"},
            "resources": [{"kind": "property", "actions": ["edit"]}]}
    out = answer(snapshot, body, "anytrack")
    assert (out["policy"], out["version"]) == ("anytrack", snapshot.active["anytrack"])
    assert out["results"][0]["actions"]["edit"]["effect"] == "allow"
    assert out["results"][0]["id"] is None


def test_explain_adds_a_trace(snapshot):
    out = answer(snapshot, BODY, "convert", explain=True)
    traced = out["results"][0]["actions"]["update_role"]["trace"]
    assert {"rule", "effect", "matched", "conditions"} <= set(traced[0])


def test_unknown_role_kind_and_action_are_denials_not_errors(snapshot):
    body = {"principal": {"id": "u_1", "role": "admin"},
            "resources": [{"kind": "spaceship", "actions": ["fly"]}]}
    decision = answer(snapshot, body, "convert")["results"][0]["actions"]["fly"]
    assert decision["effect"] == "deny" and "admin" in decision["reason"]


@pytest.mark.parametrize(("body", "field"), [
    ([], "$"),
    ({**BODY, "principal": None}, "principal"),
    ({**BODY, "principal": {"role": "edit"}}, "principal.id"),
    ({**BODY, "principal": {"id": "u_7"}}, "principal.role"),
    ({**BODY, "policy": "nope"}, "policy"),
    ({**BODY, "policy_version": 99}, "policy_version"),
    ({**BODY, "policy_version": "1"}, "policy_version"),
    ({**BODY, "resources": []}, "resources"),
    ({**BODY, "resources": [{"kind": "member"}]}, "resources[0].actions"),
    ({**BODY, "resources": [{"actions": ["view"]}]}, "resources[0].kind"),
    ({**BODY, "resources": [{"kind": "member", "actions": ["view"], "attr": [1]}]},
     "resources[0].attr"),
])
def test_a_bad_body_names_its_field(snapshot, body, field):
    with pytest.raises(CheckRequestError) as caught:
        answer(snapshot, body, "convert")
    assert caught.value.field == field
    assert caught.value.message


def test_the_engine_schema_is_the_one_openapi_publishes():
    """openapi.yaml (validated by the HTTP path) and the engine's schema (offline) agree."""
    doc = yaml.safe_load((REPO / "openapi.yaml").read_text())
    components = doc["components"]["schemas"]

    def inline(node):
        if isinstance(node, dict):
            if set(node) == {"$ref"}:
                return inline(components[node["$ref"].rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items()}
        return [inline(item) for item in node] if isinstance(node, list) else node

    ours = {k: v for k, v in schema().items() if not k.startswith("$") and k not in
            ("title", "description")}
    assert inline(components["CheckRequest"]) == ours


RESOURCE = {"kind": "object", "actions": ["view"]}


@pytest.mark.parametrize(("body", "field"), [
    ({**BODY, "resources": [RESOURCE] * 101}, "resources"),
    ({**BODY, "resources": [{**RESOURCE, "actions": ["view"] * 51}]}, "resources[0].actions"),
    ({**BODY, "colour": "red"}, "colour"),
    ({**BODY, "resources": [{**RESOURCE, "owner": "u_1"}]}, "resources[0].owner"),
    ({**BODY, "principal": {"id": "u_7", "role": "edit", "email": "a@b"}}, "principal.email"),
])
def test_offline_enforces_the_limits_and_unknown_keys_http_does(snapshot, body, field):
    with pytest.raises(CheckRequestError) as caught:
        answer(snapshot, body, "convert")
    assert caught.value.field == field
    assert not validator("CheckRequest").is_valid(body)  # and the HTTP contract refuses it too


def test_the_limits_themselves_are_accepted(snapshot):
    body = {**BODY, "resources": [{**RESOURCE, "actions": ["view"] * 50}] * 100}
    out = answer(snapshot, body, "convert")
    assert len(out["results"]) == 100 and len(out["results"][99]["actions"]) == 1


def test_hostile_bodies_are_refused_cheaply():
    """As over HTTP (tests/api/test_hostile_bodies.py): a short message, no RecursionError."""
    with pytest.raises(CheckRequestError) as refused:
        validate({"principal": {"id": "alice", "role": "edit"}, "resources": [1] * 500_000})
    assert refused.value.field == "resources" and len(refused.value.message) <= 200
    deep = orjson.loads('{"principal":{"id":"a","role":"edit"},"resources":[{"kind":"k",'
                      f'"actions":["a"],"attr":{{"x":{"[" * 1000 + "]" * 1000}}}}}]}}')
    with pytest.raises(CheckRequestError, match="nested more than"):
        validate(deep)


GOOD = st.text(min_size=1, max_size=4)
BAD = st.sampled_from(["", 1, None, "x" * 65])


def mostly(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """`bad` one time in ten (one_of would draw each half the time)."""
    return st.integers(0, 9).flatmap(lambda i: bad if i == 0 else good)


NAME = mostly(GOOD, BAD)
FACT = mostly(st.one_of(st.text(max_size=3), st.integers(-2, 2), st.booleans(), st.none()),
              JSON)
NEAR_VALID = st.fixed_dictionaries(
    {"principal": st.fixed_dictionaries({"id": NAME}, optional={"role": NAME}),
     "resources": st.lists(st.fixed_dictionaries(
         {"kind": NAME, "actions": st.lists(NAME, min_size=1, max_size=3)},
         optional={"id": mostly(st.one_of(GOOD, st.integers()), BAD),
                   "attr": st.dictionaries(st.text(max_size=3), FACT, max_size=2)}),
         min_size=1, max_size=2)},
    optional={"account_id": NAME, "policy": NAME,
              "policy_version": mostly(st.integers(1, 3), st.integers(-1, 0))})


@pytest.mark.parametrize("role_required", [True, False])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_offline_fast_path_gets_the_judges_verdict(role_required, data):
    """`validate` accepts in Rust and explains in Python: both must say the same, on bodies
    near the schema's edges (a third valid, with or without a role) and on any JSON at all."""
    body = data.draw(st.integers(0, 3).flatmap(
        lambda i: NEAR_VALID if i else st.one_of(shaped(schema()), JSON)))
    expected = not list(_validator(role_required).iter_errors(body))
    try:
        validate(body, role_required)
        accepted = True
    except CheckRequestError:
        accepted = False
    assert accepted is expected, body
