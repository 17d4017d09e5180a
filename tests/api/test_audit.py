"""The audit trail: GET /v1/accounts/{id}/audit.

Contract: every member change writes one event (actor, target, action, before
and after, the deciding rule, policy and policy version, a UTC time); refused
attempts (403 and 409) write none; the list is newest first and paginated with
an opaque cursor that misses and repeats nothing; who may read it is the
policy's `audit.view` (Convert: owners; AnyTrack: managers and owners), a
refusal being 403 naming the rule. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

from rolebook.storage.base import encode_cursor
from tests.support.membership import all_audit, join


@pytest.fixture
def convert(user, services):
    created = user("o1").post("/v1/accounts", {"name": "Acme", "policy": "convert"})
    account_id = created.json["id"]
    for user_id, role in [("o2", "owner"), ("ed", "edit"), ("rd", "read"), ("rd2", "read")]:
        join(services.store, account_id, user_id, role)
    return account_id


def audit(caller, account_id: str, query: str = ""):
    return caller.get(f"/v1/accounts/{account_id}/audit{query}")


def test_a_role_change_is_recorded_with_before_after_rule_and_version(convert, user):
    assert user("ed").patch(f"/v1/accounts/{convert}/members/rd", {"role": "edit"}).status == 200
    event = audit(user("o1"), convert).json["items"][0]
    assert event["action"] == "member.role_changed"
    assert (event["actor"], event["target"], event["account_id"]) == ("ed", "rd", convert)
    assert (event["before"], event["after"]) == ({"role": "read"}, {"role": "edit"})
    assert event["rule"] == "convert@1#editors-manage-non-owners"
    assert (event["policy"], event["policy_version"]) == ("convert", 1)
    assert event["at"].endswith("Z")


def test_removal_and_leaving_are_recorded(convert, user):
    assert user("o1").delete(f"/v1/accounts/{convert}/members/rd").status == 204
    assert user("ed").delete(f"/v1/accounts/{convert}/members/ed").status == 204
    left, removed = audit(user("o1"), convert).json["items"][:2]
    assert (left["action"], left["actor"], left["target"]) == ("member.left", "ed", "ed")
    assert left["rule"] == "convert@1#anyone-leaves"
    assert left["before"]["role"] == "edit"
    assert (removed["action"], removed["actor"], removed["target"]) == (
        "member.removed", "o1", "rd")
    assert removed["before"]["role"] == "read"
    assert removed["after"] is None


def test_refused_attempts_leave_no_trace(convert, user, services):
    before = all_audit(services.store, convert)
    base = f"/v1/accounts/{convert}/members"
    refused = [
        user("rd").patch(f"{base}/rd", {"role": "owner"}),    # raise self: 403
        user("ed").patch(f"{base}/o2", {"role": "read"}),     # editor vs owner: 403
        user("rd").delete(f"{base}/rd2"),                     # read removes: 403
        user("ed").patch(f"{base}/rd", {"role": "owner"}),    # editor makes owner: 403
    ]
    assert [r.status for r in refused] == [403, 403, 403, 403]
    assert user("o2").delete(f"{base}/o2").status == 204      # allowed: one event
    assert user("o1").delete(f"{base}/o1").status == 409      # only owner: refused
    assert user("o1").patch(f"{base}/o1", {"role": "edit"}).status == 409
    after = all_audit(services.store, convert)
    assert after[1:] == before
    assert after[0]["action"] == "member.left"


def test_newest_first_and_pages_cover_everything_once(convert, user, services):
    owner = user("o1")
    for role in ["edit", "read", "edit", "read", "edit"]:
        assert owner.patch(f"/v1/accounts/{convert}/members/rd2", {"role": role}).status == 200
    expected = all_audit(services.store, convert)
    assert len(expected) >= 10
    seen, cursor = [], None
    while True:
        page = audit(owner, convert, "?limit=3" + (f"&cursor={cursor}" if cursor else ""))
        assert page.status == 200
        assert len(page.json["items"]) <= 3
        seen += page.json["items"]
        cursor = page.json["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    ids = [e["id"] for e in seen]
    assert ids == sorted(ids, reverse=True)
    assert [e["after"] for e in seen[:5]] == [{"role": r} for r in
                                              ["edit", "read", "edit", "read", "edit"]]
    for value in (10**30, -(10**30), 1.5, "12"):  # forged: an OverflowError was a 500
        forged = audit(owner, convert, f"?cursor={encode_cursor('audit', value)}")
        assert forged.status == 400, forged.json
        assert forged.json["errors"] == [{"field": "cursor", "message": "invalid cursor"}]


@pytest.mark.parametrize("policy, roles", [
    ("convert", {"owner": 200, "edit": 403, "read": 403}),
    ("anytrack", {"owner": 200, "manager": 200, "member_edit": 403, "member_read": 403}),
])
def test_who_may_read_the_audit_is_policy(policy, roles, user, services):
    created = user("o1").post("/v1/accounts", {"name": "Acme", "policy": policy})
    account_id = created.json["id"]
    for role in roles:
        if role != "owner":
            join(services.store, account_id, f"as-{role}", role)
    for role, status in roles.items():
        caller = user("o1" if role == "owner" else f"as-{role}")
        answer = audit(caller, account_id)
        assert answer.status == status, (role, answer.json)
        if status == 403:
            assert answer.json["rule"] == f"{policy}@1#default-deny"
        else:
            assert answer.json["items"][-1]["action"] == "account.created"
