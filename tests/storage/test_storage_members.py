"""Members: keyset pages, role changes and removals decided by the caller's callback.

Storage gathers the facts under the account lock, passes them to `decide`, and turns
a denial into Denied (403) or, for a policy's conflict rules, Conflict (409).
"""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rolebook.storage import Conflict, Denied, NotFound
from rolebook.storage.base import decode_cursor, encode_cursor


def test_list_pages_by_user_id_and_filters_by_role(store, new_account, join):
    account = new_account("alice")
    for user, role in [("dave", "edit"), ("bob", "read"), ("carol", "edit"), ("erin", "read")]:
        join(account["id"], user, role)

    pages, cursor = [], None
    while True:
        items, cursor = store.members.list(account["id"], 2, cursor)
        pages.append([m["user_id"] for m in items])
        if cursor is None:
            break
    editors, _ = store.members.list(account["id"], 10, role="edit")

    assert pages == [["alice", "bob"], ["carol", "dave"], ["erin"]]
    assert [m["user_id"] for m in editors] == ["carol", "dave"]
    assert set(editors[0]) == {"user_id", "email", "first_name", "last_name", "role",
                               "joined_at"}


@pytest.mark.parametrize("cursor", ["garbage!", "e30", encode_cursor("audit", 5),
                                    encode_cursor("members", 5), "x" * 600])
def test_bad_cursor_is_a_value_error(store, new_account, cursor):
    account = new_account("alice")
    with pytest.raises(ValueError):
        store.members.list(account["id"], 10, cursor)


@given(st.text(max_size=80))
def test_decoding_any_text_either_works_or_raises_value_error(text):
    with contextlib.suppress(ValueError):
        decode_cursor("members", text)


def test_list_and_get_unknown(store, new_account):
    account = new_account("alice")
    with pytest.raises(NotFound):
        store.members.list("acc_nope", 10)
    with pytest.raises(NotFound):
        store.members.get(account["id"], "nobody")
    with pytest.raises(ValueError):
        store.members.list(account["id"], 0)


def test_change_role_audits_and_bumps_version(store, new_account, join, decide):
    account = new_account("alice")
    join(account["id"], "bob", "read")
    version = store.accounts.get(account["id"])["version"]

    member = store.members.change_role(account["id"], "alice", "bob", new_role="edit",
                                       owner_role="owner", decide=decide)

    assert member["role"] == "edit"
    assert store.accounts.role_of(account["id"], "bob") == "edit"
    assert store.accounts.get(account["id"])["version"] == version + 1
    event = store.audit.list(account["id"], 1)[0][0]
    assert (event["action"], event["actor"], event["target"]) == (
        "member.role_changed", "alice", "bob")
    assert (event["before"], event["after"], event["rule"]) == (
        {"role": "read"}, {"role": "edit"}, "self-or-owner")


def test_facts_passed_to_decide(store, new_account, join):
    account = new_account("alice")
    join(account["id"], "bob", "edit")
    seen = []

    def spy(kind, action, role, attr):
        seen.append((kind, action, role, attr))
        return SimpleNamespace(allowed=False, rule="r", reason="no", conflict=False,
                               policy="p", version=1)

    with pytest.raises(Denied):
        store.members.change_role(account["id"], "bob", "alice", new_role="read",
                                  owner_role="owner", decide=spy)
    with pytest.raises(Denied):
        store.members.remove(account["id"], "bob", "bob", owner_role="owner", decide=spy)

    assert seen == [
        ("member", "update_role", "edit", {"target_user_id": "alice", "target_role": "owner",
                                           "new_role": "read", "owner_count": 1,
                                           "is_self": False}),
        ("member", "leave", "edit", {"target_user_id": "bob", "target_role": "edit",
                                     "owner_count": 1, "is_self": True}),
    ]
    assert store.members.member_facts(account["id"], "bob", "alice", "owner") == {
        "actor_role": "edit", "target_user_id": "alice", "target_role": "owner",
        "owner_count": 1, "is_self": False}


def test_denials_and_conflicts_change_nothing(store, new_account, join, decide):
    account = new_account("alice")
    join(account["id"], "bob", "read")

    with pytest.raises(Denied) as raised:
        store.members.change_role(account["id"], "bob", "bob", new_role="owner", owner_role="owner",
                                  decide=decide)
    assert raised.value.rule == "nobody-raises-own-role"
    with pytest.raises(Conflict):
        store.members.change_role(account["id"], "alice", "alice", new_role="read",
                                  owner_role="owner", decide=decide)
    with pytest.raises(Conflict):
        store.members.remove(account["id"], "alice", "alice", owner_role="owner", decide=decide)
    with pytest.raises(NotFound):
        store.members.remove(account["id"], "mallory", "bob", owner_role="owner", decide=decide)
    with pytest.raises(NotFound):
        store.members.remove(account["id"], "alice", "mallory", owner_role="owner", decide=decide)

    assert store.accounts.role_of(account["id"], "alice") == "owner"
    assert store.accounts.role_of(account["id"], "bob") == "read"
    assert store.accounts.get(account["id"])["version"] == 2  # only bob's joining


def test_remove_and_leave_are_audited(store, new_account, join, decide):
    account = new_account("alice")
    join(account["id"], "bob", "edit")
    join(account["id"], "carol", "read")

    store.members.remove(account["id"], "bob", "carol", owner_role="owner", decide=decide)
    store.members.remove(account["id"], "bob", "bob", owner_role="owner", decide=decide)

    assert [m["user_id"] for m in store.members.list(account["id"], 10)[0]] == ["alice"]
    events = store.audit.list(account["id"], 2)[0]
    assert [(e["action"], e["actor"], e["target"]) for e in events] == [
        ("member.left", "bob", "bob"), ("member.removed", "bob", "carol")]
    assert events[1]["before"]["role"] == "read" and events[1]["after"] is None


def test_audit_pages_newest_first(store, new_account, join):
    account = new_account("alice")
    for user in ("bob", "carol", "dave"):
        join(account["id"], user)

    actions, cursor = [], None
    while True:
        items, cursor = store.audit.list(account["id"], 3, cursor)
        actions += [e["action"] for e in items]
        if cursor is None:
            break

    assert actions == ["invitation.accepted", "invitation.created"] * 3 + ["account.created"]
    with pytest.raises(ValueError):
        store.audit.list(account["id"], 3, encode_cursor("audit", "x"))
