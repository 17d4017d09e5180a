"""Every invitation rule of both products' permission tables, asked through HTTP.

Contract protected (the Convert and AnyTrack permission tables): who may invite whom
with which role, resend and revoke which invitation, and list or view them.
Convert: read cannot invite; edit invites up to edit, never owner, and
revokes any invitation but an owner's; owner does everything. AnyTrack:
member_read and member_edit cannot manage (or even see) invitations; a
manager manages every invitation except those granting owner; owner does
everything. A denial is 403 naming the policy's rule; nothing is created.
The cells are written out here from the products' tables (as listed above), not read
from the policy files, so a policy edit that changes one fails here.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from rolebook.storage import InvitationRules
from tests.support.client import User
from tests.support.markers import sqlite_only
from tests.support.membership import SetupDecision

pytestmark = sqlite_only

CONVERT = ("read", "edit", "owner")
ANYTRACK = ("member_read", "member_edit", "manager", "owner")

# (actor role, role the invitation grants) -> allowed?
EXPECTED = {
    ("convert", "create"): {
        ("read", "read"): False, ("read", "edit"): False, ("read", "owner"): False,
        ("edit", "read"): True, ("edit", "edit"): True, ("edit", "owner"): False,
        ("owner", "read"): True, ("owner", "edit"): True, ("owner", "owner"): True,
    },
    ("convert", "revoke"): {
        ("read", "read"): False, ("read", "edit"): False, ("read", "owner"): False,
        ("edit", "read"): True, ("edit", "edit"): True, ("edit", "owner"): False,
        ("owner", "read"): True, ("owner", "edit"): True, ("owner", "owner"): True,
    },
    **{("anytrack", action): {
        (actor, granted): actor == "owner" or (actor == "manager" and granted != "owner")
        for actor in ANYTRACK for granted in ANYTRACK
    } for action in ("create", "revoke")},
}
# Resending is inviting again: the same cells as create.
EXPECTED[("convert", "resend")] = EXPECTED[("convert", "create")]
EXPECTED[("anytrack", "resend")] = EXPECTED[("anytrack", "create")]
SEE = {"convert": {"read": True, "edit": True, "owner": True},
       "anytrack": {"member_read": False, "member_edit": False, "manager": True, "owner": True}}
ROLES = {"convert": CONVERT, "anytrack": ANYTRACK}
NAMES = {"first_name": "Ida", "last_name": "Invitee"}


def _message(invitation, token):
    return invitation["email"], "setup", "setup", None


@pytest.fixture
def config(config):
    return replace(config, invitations_per_hour=10_000)


@pytest.fixture
def team(user, services):
    """team(policy) -> (account_id, {role: User}): one member of every role of the policy."""
    def make(policy: str):
        owner = user("owner")
        account = owner.post("/v1/accounts", {"name": "Team", "policy": policy}).json["id"]
        members = {"owner": owner}
        for role in ROLES[policy]:
            if role == "owner":
                continue
            uid = f"u_{role}"
            _, token = services.store.invitations.create(account, "owner",
                                                         email=f"{uid}@example.com", role=role,
                                                         decide=lambda *a: SetupDecision(),
                                                         make_message=_message,
                                                         rules=InvitationRules(3600))
            services.store.invitations.accept(token, uid, f"{uid}@example.com")
            members[role] = user(uid)
        return account, members
    return make


def invite_as(owner: User, account: str, email: str, role: str) -> dict:
    response = owner.post(f"/v1/accounts/{account}/invitations",
                          {"email": email, "role": role, **NAMES})
    assert response.status == 201, response.json
    return response.json


def check_denial(response, policy: str) -> None:
    assert response.status == 403, response.json
    assert response.json["rule"].startswith(f"{policy}@1#"), response.json


@pytest.mark.parametrize("policy", ["convert", "anytrack"])
def test_who_may_invite_which_role(team, policy):
    account, members = team(policy)
    wrong = []
    for (actor, granted), allowed in EXPECTED[(policy, "create")].items():
        response = members[actor].post(
            f"/v1/accounts/{account}/invitations",
            {"email": f"new-{actor}-{granted}@example.com", "role": granted, **NAMES})
        if (response.status == 201) != allowed:
            wrong.append((actor, granted, response.status, response.json))
        elif not allowed:
            check_denial(response, policy)
    assert not wrong, wrong
    pending = members["owner"].get(
        f"/v1/accounts/{account}/invitations?status=pending&limit=200").json
    assert len(pending["items"]) == sum(EXPECTED[(policy, "create")].values())


@pytest.mark.parametrize("policy", ["convert", "anytrack"])
@pytest.mark.parametrize("action", ["revoke", "resend"])
def test_who_may_revoke_and_resend_which_invitation(team, policy, action):
    account, members = team(policy)
    wrong = []
    for (actor, granted), allowed in EXPECTED[(policy, action)].items():
        inv = invite_as(members["owner"], account, f"t-{actor}-{granted}@example.com", granted)
        path = f"/v1/accounts/{account}/invitations/{inv['id']}"
        caller = members[actor]
        response = caller.delete(path) if action == "revoke" else caller.post(path + "/resend")
        if (response.status == 200) != allowed:
            wrong.append((actor, granted, response.status, response.json))
        elif not allowed:
            check_denial(response, policy)
            after = members["owner"].get(path).json
            assert (after["status"], after["expires_at"]) == ("pending", inv["expires_at"])
        else:
            assert response.json["status"] == ("revoked" if action == "revoke" else "pending")
    assert not wrong, wrong


@pytest.mark.parametrize("policy", ["convert", "anytrack"])
def test_who_may_list_and_view_invitations(team, policy):
    account, members = team(policy)
    inv = invite_as(members["owner"], account, "seen@example.com", ROLES[policy][0])
    for role, allowed in SEE[policy].items():
        listing = members[role].get(f"/v1/accounts/{account}/invitations?status=pending")
        view = members[role].get(f"/v1/accounts/{account}/invitations/{inv['id']}")
        for response in (listing, view):
            if allowed:
                assert response.status == 200, (role, response.json)
            else:
                check_denial(response, policy)
        if allowed:
            assert [i["id"] for i in listing.json["items"]] == [inv["id"]]
            assert view.json["id"] == inv["id"]
