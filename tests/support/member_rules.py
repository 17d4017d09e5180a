"""Every member rule of both products' permission tables and every self-service rule, as data.

One table drives the in-process tests (tests/api/test_members_rules.py, on SQLite
and PostgreSQL) and the same cases over real HTTP (tests/e2e/test_rules_over_http.py).
Each case arranges a fresh account (its creator `o1` is the first owner; `o2` a
second owner where the case needs two), lets one member act on another through
the API, and `check` asserts the status, the deciding rule, the members after,
and the audit trail (a new event on success, none on a refusal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rolebook.storage import Store
from tests.support.membership import all_audit, join, members_of

# Members of every arranged account besides the owners, per policy.
STAFF = {
    "convert": {"ed": "edit", "ed2": "edit", "rd": "read", "rd2": "read"},
    "anytrack": {"mg": "manager", "me": "member_edit", "mr": "member_read",
                 "mr2": "member_read"},
}


@dataclass(frozen=True)
class Case:
    name: str
    policy: str
    actor: str
    method: str  # "patch" (change role) or "delete" (remove / leave)
    target: str
    new_role: str | None
    status: int
    rule: str | None  # the deciding rule's name (409 answers carry no rule)
    owners: int = 1

    @property
    def id(self) -> str:
        return f"{self.policy}:{self.name}"


def C(policy, name, actor, method, target, new_role, status, rule, owners=1) -> Case:
    return Case(name, policy, actor, method, target, new_role, status, rule, owners)


CONVERT = [
    # read: nothing but seeing
    C("convert", "read-cannot-change-roles", "rd", "patch", "rd2", "edit", 403, "default-deny"),
    C("convert", "read-cannot-demote", "rd", "patch", "ed", "read", 403, "default-deny"),
    C("convert", "read-cannot-remove", "rd", "delete", "rd2", None, 403, "default-deny"),
    # edit: manages everyone but owners, never makes owners
    C("convert", "edit-promotes-read-to-edit", "ed", "patch", "rd", "edit", 200,
      "editors-manage-non-owners"),
    C("convert", "edit-demotes-edit", "ed", "patch", "ed2", "read", 200,
      "editors-manage-non-owners"),
    C("convert", "edit-cannot-make-owner", "ed", "patch", "rd", "owner", 403, "default-deny"),
    C("convert", "edit-cannot-change-owner", "ed", "patch", "o2", "read", 403, "default-deny",
      owners=2),
    C("convert", "edit-removes-read", "ed", "delete", "rd", None, 204,
      "editors-remove-non-owners"),
    C("convert", "edit-removes-edit", "ed", "delete", "ed2", None, 204,
      "editors-remove-non-owners"),
    C("convert", "edit-cannot-remove-owner", "ed", "delete", "o2", None, 403, "default-deny",
      owners=2),
    # owner: everything, as long as an owner remains
    # (the first allow rule in file order that matches is the one cited: for a target
    # that is no owner, the editors' rule already covers an owner)
    C("convert", "owner-makes-owner", "o1", "patch", "rd", "owner", 200,
      "editors-manage-non-owners"),
    C("convert", "owner-demotes-edit", "o1", "patch", "ed", "read", 200,
      "editors-manage-non-owners"),
    C("convert", "owner-demotes-other-owner", "o1", "patch", "o2", "edit", 200,
      "owners-manage-members", owners=2),
    C("convert", "owner-removes-edit", "o1", "delete", "ed", None, 204,
      "editors-remove-non-owners"),
    C("convert", "owner-removes-other-owner", "o1", "delete", "o2", None, 204,
      "owners-manage-members", owners=2),
    # self-service
    C("convert", "read-leaves", "rd", "delete", "rd", None, 204, "anyone-leaves"),
    C("convert", "edit-leaves", "ed", "delete", "ed", None, 204, "anyone-leaves"),
    C("convert", "edit-lowers-self", "ed", "patch", "ed", "read", 200, "anyone-lowers-own-role"),
    C("convert", "read-cannot-raise-self", "rd", "patch", "rd", "edit", 403,
      "nobody-raises-own-role"),
    C("convert", "edit-cannot-raise-self", "ed", "patch", "ed", "owner", 403,
      "nobody-raises-own-role"),
    C("convert", "only-owner-cannot-leave", "o1", "delete", "o1", None, 409, None),
    C("convert", "only-owner-cannot-step-down", "o1", "patch", "o1", "edit", 409, None),
    C("convert", "one-of-two-owners-leaves", "o2", "delete", "o2", None, 204, "anyone-leaves",
      owners=2),
    C("convert", "one-of-two-owners-steps-down", "o1", "patch", "o1", "read", 200,
      "anyone-lowers-own-role", owners=2),
]

ANYTRACK = [
    C("anytrack", "member-read-cannot-change-roles", "mr", "patch", "mr2", "member_edit", 403,
      "default-deny"),
    C("anytrack", "member-edit-cannot-change-roles", "me", "patch", "mr", "member_edit", 403,
      "default-deny"),
    C("anytrack", "member-edit-cannot-remove", "me", "delete", "mr", None, 403, "default-deny"),
    C("anytrack", "manager-promotes-to-member-edit", "mg", "patch", "mr", "member_edit", 200,
      "managers-manage-non-owners"),
    C("anytrack", "manager-promotes-to-manager", "mg", "patch", "mr", "manager", 200,
      "managers-manage-non-owners"),
    C("anytrack", "manager-demotes-member-edit", "mg", "patch", "me", "member_read", 200,
      "managers-manage-non-owners"),
    C("anytrack", "manager-cannot-promote-to-owner", "mg", "patch", "mr", "owner", 403,
      "default-deny"),
    C("anytrack", "manager-cannot-change-owner", "mg", "patch", "o2", "member_read", 403,
      "default-deny", owners=2),
    C("anytrack", "manager-removes-member", "mg", "delete", "me", None, 204,
      "managers-remove-non-owners"),
    C("anytrack", "manager-cannot-remove-owner", "mg", "delete", "o2", None, 403,
      "default-deny", owners=2),
    C("anytrack", "owner-makes-owner", "o1", "patch", "mg", "owner", 200,
      "owners-manage-members"),
    C("anytrack", "owner-demotes-other-owner", "o1", "patch", "o2", "manager", 200,
      "owners-manage-members", owners=2),
    C("anytrack", "owner-removes-manager", "o1", "delete", "mg", None, 204,
      "managers-remove-non-owners"),
    C("anytrack", "owner-removes-other-owner", "o1", "delete", "o2", None, 204,
      "owners-manage-members", owners=2),
    C("anytrack", "member-read-leaves", "mr", "delete", "mr", None, 204, "anyone-leaves"),
    C("anytrack", "manager-leaves", "mg", "delete", "mg", None, 204, "anyone-leaves"),
    C("anytrack", "manager-lowers-self", "mg", "patch", "mg", "member_edit", 200,
      "anyone-lowers-own-role"),
    C("anytrack", "member-edit-cannot-raise-self", "me", "patch", "me", "manager", 403,
      "nobody-raises-own-role"),
    C("anytrack", "manager-cannot-raise-self", "mg", "patch", "mg", "owner", 403,
      "nobody-raises-own-role"),
    C("anytrack", "only-owner-cannot-leave", "o1", "delete", "o1", None, 409, None),
    C("anytrack", "only-owner-cannot-step-down", "o1", "patch", "o1", "manager", 409, None),
    C("anytrack", "one-of-two-owners-leaves", "o1", "delete", "o1", None, 204, "anyone-leaves",
      owners=2),
]

CASES = CONVERT + ANYTRACK


def arrange(make_user: Callable, store: Store, policy: str, owners: int = 1,
            ns: str = "") -> str:
    """A fresh account under `policy`: o1 creates it through the API, the rest join.

    `ns` prefixes every user id, so many cases can share one database.
    """
    created = make_user(ns + "o1").post("/v1/accounts", {"name": "Acme", "policy": policy})
    assert created.status == 201, created.json
    account_id = created.json["id"]
    owner_role = created.json["role"]
    if owners == 2:
        join(store, account_id, ns + "o2", owner_role)
    for user_id, role in STAFF[policy].items():
        join(store, account_id, ns + user_id, role)
    return account_id


def act(make_user: Callable, account_id: str, case: Case, ns: str = ""):
    path = f"/v1/accounts/{account_id}/members/{ns}{case.target}"
    caller = make_user(ns + case.actor)
    if case.method == "patch":
        return caller.patch(path, {"role": case.new_role})
    return caller.delete(path)


def check(make_user: Callable, store: Store, case: Case, ns: str = "") -> None:
    account_id = arrange(make_user, store, case.policy, case.owners, ns)
    before_members = members_of(store, account_id)
    before_audit = all_audit(store, account_id)

    answer = act(make_user, account_id, case, ns)

    assert answer.status == case.status, answer.json
    after_members = members_of(store, account_id)
    after_audit = all_audit(store, account_id)
    rule_id = f"{case.policy}@1#{case.rule}" if case.rule else None
    if case.status >= 400:
        assert answer.json["status"] == case.status
        if case.status == 403:
            assert answer.json["rule"] == rule_id
            assert answer.json["detail"]
        if case.status == 409:
            assert "owner" in answer.json["detail"]
        assert after_members == before_members, "a refused change changed the members"
        assert after_audit == before_audit, "a refused change was written to the audit log"
        return

    actor, target = ns + case.actor, ns + case.target
    expected = dict(before_members)
    if case.method == "patch":
        expected[target] = case.new_role
        assert answer.json["user_id"] == target
        assert answer.json["role"] == case.new_role
    else:
        del expected[target]
        assert answer.json in (None, "")
    assert after_members == expected

    assert len(after_audit) == len(before_audit) + 1
    event = after_audit[0]
    action = ("member.role_changed" if case.method == "patch" else
              "member.left" if case.actor == case.target else "member.removed")
    assert (event["action"], event["actor"], event["target"]) == (action, actor, target)
    assert (event["rule"], event["policy"], event["policy_version"]) == (rule_id, case.policy, 1)
    if case.method == "patch":
        assert event["before"] == {"role": before_members[target]}
        assert event["after"] == {"role": case.new_role}
    else:
        assert event["before"]["user_id"] == target
        assert event["before"]["role"] == before_members[target]
