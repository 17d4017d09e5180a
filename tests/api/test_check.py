"""POST /v1/check: the decision endpoint, with roles and facts filled from storage.

Protects: the answer shape (policy, version, digest, decision_id, one decision
per resource and action naming its rule); role lookup by account; non-members
denied for every action; stored facts win over facts the caller sends; a
caller without the `check` scope may only ask about itself, by account; batch
limits; explain traces; and that every decision reaches the decision log.
"""

from __future__ import annotations

import json

import pytest

from tests.support.markers import sqlite_only


@pytest.fixture
def owner(user):
    return user("alice")


@pytest.fixture
def service(user):
    return user("svc", scope="check")


@pytest.fixture
def account(owner):
    result = owner.post("/v1/accounts", {"name": "Acme"})
    assert result.status == 201
    return result.json


def check(caller, body, query=""):
    return caller.post("/v1/check" + query, body)


def test_role_and_facts_come_from_storage(service, account):
    body = {"principal": {"id": "alice"}, "account_id": account["id"],
            "resources": [
                # The caller claims alice is not the only owner; storage knows better.
                {"kind": "member", "id": "alice",
                 "attr": {"new_role": "read", "owner_count": 5, "target_role": "read"},
                 "actions": ["update_role", "leave"]},
                {"kind": "billing", "actions": ["view"]},
                {"kind": "account", "id": account["id"], "actions": ["delete"]},
            ]}
    result = check(service, body)
    assert result.status == 200, result.json
    answer = result.json
    assert answer["policy"] == "convert" and answer["version"] == 1
    assert answer["digest"].startswith("sha256:") and len(answer["decision_id"]) >= 16
    assert answer["principal"] == {"id": "alice", "role": "owner"}
    member, billing, acct = answer["results"]
    assert member["actions"]["update_role"]["effect"] == "deny"
    assert member["actions"]["update_role"]["rule"] == "convert@1#keep-an-owner"
    assert member["actions"]["leave"]["rule"] == "convert@1#only-owner-stays"
    assert billing["actions"]["view"] == {
        "effect": "allow", "rule": "convert@1#owners-manage-billing",
        "reason": billing["actions"]["view"]["reason"]}
    assert acct["actions"]["delete"]["effect"] == "allow"


def test_explicit_role_without_account(service):
    body = {"principal": {"id": "u9", "role": "member_edit"}, "policy": "anytrack",
            "resources": [{"kind": "dataset", "id": "d1", "actions": ["view", "edit"]},
                          {"kind": "billing", "actions": ["view"]}]}
    answer = check(service, body).json
    assert answer["policy"] == "anytrack"
    assert answer["results"][0]["actions"]["edit"]["effect"] == "allow"
    assert answer["results"][1]["actions"]["view"]["effect"] == "deny"
    assert answer["results"][1]["actions"]["view"]["rule"] == "anytrack@1#default-deny"


def test_non_member_is_denied_everything(service, account):
    body = {"principal": {"id": "mallory"}, "account_id": account["id"],
            "resources": [{"kind": "report", "actions": ["view"]}]}
    answer = check(service, body).json
    decision = answer["results"][0]["actions"]["view"]
    assert decision["effect"] == "deny"
    assert "not a member" in decision["reason"]
    assert answer["principal"]["role"] is None


def test_user_may_ask_about_itself_only(owner, user, account):
    mine = {"principal": {"id": "alice"}, "account_id": account["id"],
            "resources": [{"kind": "object", "actions": ["update"]}]}
    assert check(owner, mine).json["results"][0]["actions"]["update"]["effect"] == "allow"
    other = {**mine, "principal": {"id": "bob"}}
    result = check(owner, other)
    assert result.status == 403
    assert "check" in result.json["detail"]


def test_user_cannot_claim_a_role(user, account):
    bob = user("bob")
    # bob is no member: claiming "owner" must not help, and he may not probe the account.
    body = {"principal": {"id": "bob", "role": "owner"}, "account_id": account["id"],
            "resources": [{"kind": "billing", "actions": ["view"]}]}
    assert check(bob, body).status == 404
    no_account = {"principal": {"id": "bob", "role": "owner"}, "policy": "convert",
                  "resources": [{"kind": "billing", "actions": ["view"]}]}
    result = check(bob, no_account)
    assert result.status == 400
    assert result.json["errors"][0]["field"] == "account_id"


def test_unknown_account_is_404(service):
    body = {"principal": {"id": "alice"}, "account_id": "acc_missing",
            "resources": [{"kind": "report", "actions": ["view"]}]}
    assert check(service, body).status == 404


def test_an_integral_float_version_is_that_version(service, owner):
    # Found by schemathesis: JSON Schema counts 1.0 as an integer; storage wanted an int (500).
    created = owner.post("/v1/accounts", {"name": "Floats", "policy_version": 1.0})
    assert created.status == 201, created.json
    assert created.json["policy_version"] == 1
    body = {"principal": {"id": "alice", "role": "owner"}, "policy_version": 1.0,
            "resources": [{"kind": "report", "actions": ["view"]}]}
    answered = check(service, body)
    assert answered.status == 200 and answered.json["version"] == 1, answered.json


def test_ids_no_database_could_hold_are_not_found_not_errors(service, account):
    # Found by schemathesis: whitespace-only ids reached Pony lookups, which refuse them (500).
    blank = {"principal": {"id": "alice"}, "account_id": "\t",
             "resources": [{"kind": "report", "actions": ["view"]}]}
    assert check(service, blank).status == 404
    for kind, action in (("member", "remove"), ("invitation", "revoke")):
        answers = []
        for resource in ({"kind": kind, "id": " ", "actions": [action]},
                         {"kind": kind, "actions": [action]}):
            result = check(service, {"principal": {"id": "alice"}, "account_id": account["id"],
                                     "resources": [resource]})
            assert result.status == 200, result.json
            answers.append(result.json["results"][0]["actions"])
        assert answers[0] == answers[1]  # as if no id was given: nothing is stored about it


@sqlite_only
def test_policy_must_match_the_account(service, account):
    body = {"principal": {"id": "alice"}, "account_id": account["id"], "policy": "anytrack",
            "resources": [{"kind": "report", "actions": ["view"]}]}
    result = check(service, body)
    assert result.status == 400
    assert result.json["errors"][0]["field"] == "policy"


@sqlite_only
@pytest.mark.parametrize("body, field", [
    ({"principal": {"id": "x", "role": "read"}, "resources": []}, "resources"),
    ({"principal": {"id": "x", "role": "read"},
      "resources": [{"kind": "report", "actions": ["view"]}] * 101}, "resources"),
    ({"principal": {"id": "x", "role": "read"},
      "resources": [{"kind": "report", "actions": ["view"] * 51}]}, "resources[0].actions"),
    ({"principal": {"id": "x", "role": "read"}, "policy": "nope",
      "resources": [{"kind": "report", "actions": ["view"]}]}, "policy"),
    ({"principal": {"id": "x", "role": "read"}, "policy_version": 99,
      "resources": [{"kind": "report", "actions": ["view"]}]}, "policy_version"),
    ({"principal": {"id": "x"}, "resources": [{"kind": "report", "actions": ["view"]}]},
     "principal.role"),
    ({"resources": [{"kind": "report", "actions": ["view"]}]}, "principal"),
])
def test_bad_bodies_name_the_field(service, body, field):
    result = check(service, body)
    assert result.status == 400, result.json
    assert result.json["type"].endswith("/invalid-request")
    assert field in [e["field"] for e in result.json["errors"]]


@sqlite_only
def test_unknown_role_kind_action_deny_with_reason(service):
    body = {"principal": {"id": "x", "role": "wizard"},
            "resources": [{"kind": "report", "actions": ["view"]}]}
    decision = check(service, body).json["results"][0]["actions"]["view"]
    assert decision["effect"] == "deny" and "wizard" in decision["reason"]
    body = {"principal": {"id": "x", "role": "owner"},
            "resources": [{"kind": "spaceship", "actions": ["fly"]}]}
    decision = check(service, body).json["results"][0]["actions"]["fly"]
    assert decision["effect"] == "deny" and "spaceship" in decision["reason"]


@sqlite_only
def test_missing_fact_fails_closed(service):
    body = {"principal": {"id": "x", "role": "edit"},
            "resources": [{"kind": "member", "id": "y", "attr": {"is_self": True},
                           "actions": ["update_role"]}]}
    decision = check(service, body).json["results"][0]["actions"]["update_role"]
    assert decision["effect"] == "deny"
    assert "new_role" in decision["reason"] and "failing closed" in decision["reason"]


@sqlite_only
def test_explain_traces_every_rule(service):
    body = {"principal": {"id": "x", "role": "edit"},
            "resources": [{"kind": "member", "id": "y",
                           "attr": {"is_self": False, "target_role": "read", "new_role": "edit",
                                    "owner_count": 1}, "actions": ["update_role"]}]}
    decision = check(service, body, "?explain=true").json["results"][0]["actions"]["update_role"]
    assert decision["effect"] == "allow"
    rules = [t["rule"] for t in decision["trace"]]
    assert "convert@1#nobody-raises-own-role" in rules
    assert [t["rule"] for t in decision["trace"] if t["matched"]] == [decision["rule"]]
    assert all("conditions" in t for t in decision["trace"])


@sqlite_only
def test_every_decision_is_logged(service, services, config):
    body = {"principal": {"id": "x", "role": "read"},
            "resources": [{"kind": "report", "id": "r1", "actions": ["view"]},
                          {"kind": "object", "id": "o1", "attr": {"owner": "x"},
                           "actions": ["update", "delete", "fly"]}]}
    answer = check(service, body).json
    services.decisions.flush()
    lines = [json.loads(x) for x in (config.data_path / "decisions.log").read_text().splitlines()]
    [mine] = [x for x in lines if x["decision_id"] == answer["decision_id"]]
    assert sorted((r["kind"], a, d["effect"]) for r in mine["resources"]
                  for a, d in r["actions"].items()) == [
        ("object", "delete", "deny"), ("object", "update", "deny"), ("report", "view", "allow")]
    assert mine["resources"][1]["attr"] == {"owner": "x"}
    assert mine["resources"][1]["undefined_actions"] == ["fly"]
    assert mine["principal"] == {"id": "x", "role": "read"}
    assert mine["policy"] == "convert@1" and mine["caller"] == "svc"
    assert mine["digest"] == answer["digest"] and mine["time"].endswith("Z")
    assert mine["instance"]["pid"] and mine["request_id"]
