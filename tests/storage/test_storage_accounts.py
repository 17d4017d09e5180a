"""Accounts: creation makes the creator the first owner; listing pages; deletion cleans up.

Also the Store itself: URLs, readiness, several Stores in one process, and that a
database race inside a transaction surfaces as Conflict, never as a Pony error.
"""

from __future__ import annotations

import pytest

from rolebook.storage import Conflict, Denied, InvitationRules, NotFound, RateLimited, Store
from rolebook.storage.postgres import LeanPGProvider
from rolebook.storage.store import bind_arguments


def test_create_makes_creator_first_owner(store, new_account):
    account = new_account("alice")

    assert account["id"].startswith("acc_")
    assert store.accounts.get(account["id"]) == account
    assert store.accounts.role_of(account["id"], "alice") == "owner"
    assert store.accounts.role_of(account["id"], "bob") is None
    assert store.accounts.facts(account["id"], "owner") == {"owner_count": 1}
    assert store.members.get(account["id"], "alice")["email"] == "alice@example.com"
    assert account["created_at"].endswith("Z")
    events, _ = store.audit.list(account["id"], 10)
    assert [e["action"] for e in events] == ["account.created"]
    assert events[0]["actor"] == "alice"


def test_access_returns_account_and_role_in_one_call(store, new_account):
    account = new_account("alice")

    assert store.accounts.access(account["id"], "alice") == (account, "owner")
    assert store.accounts.access(account["id"], "bob") == (account, None)
    with pytest.raises(NotFound):
        store.accounts.access("acc_missing", "alice")


def test_get_unknown_account_is_not_found(store):
    with pytest.raises(NotFound):
        store.accounts.get("acc_nope")


def test_list_for_user_pages_with_opaque_cursor(store, new_account):
    ids = sorted(new_account("alice", name=f"A{i}")["id"] for i in range(5))
    new_account("bob")

    seen, cursor = [], None
    while True:
        items, cursor = store.accounts.list_for_user("alice", 2, cursor)
        seen += [item["id"] for item in items]
        assert all(item["role"] == "owner" for item in items)
        if cursor is None:
            break
    assert seen == ids
    with pytest.raises(ValueError):
        store.accounts.list_for_user("alice", 2, "not-a-cursor")


def test_delete_needs_permission_and_keeps_audit(store, new_account, decide, join):
    account = new_account("alice")
    join(account["id"], "bob", "edit")

    with pytest.raises(Denied) as denied:
        store.accounts.delete(account["id"], "bob", owner_role="owner", decide=decide)
    assert denied.value.rule == "no-rule"
    with pytest.raises(NotFound):
        store.accounts.delete(account["id"], "mallory", owner_role="owner", decide=decide)

    store.accounts.delete(account["id"], "alice", owner_role="owner", decide=decide)

    with pytest.raises(NotFound):
        store.accounts.get(account["id"])
    assert store.accounts.role_of(account["id"], "bob") is None
    assert store.accounts.list_for_user("bob", 10) == ([], None)
    events, _ = store.audit.list(account["id"], 1)
    assert events[0]["action"] == "account.deleted"
    assert (events[0]["rule"], events[0]["policy"], events[0]["policy_version"]) == (
        "owners-delete", "testpol", 1)


def test_bind_arguments_for_each_url(tmp_path):
    path = tmp_path / "nested" / "dir" / "x.db"
    args = bind_arguments(f"sqlite://{path}")
    assert args["filename"] == str(path) and args["timeout"] >= 30
    assert path.parent.is_dir()
    assert bind_arguments("sqlite://:sharedmemory:")["filename"] == ":sharedmemory:"
    assert bind_arguments("postgresql://bob:s%40cret@db.example:6543/rb") == {
        "provider": LeanPGProvider, "host": "db.example", "port": 6543, "database": "rb",
        "user": "bob", "password": "s@cret"}
    assert bind_arguments(f"sqlite:///{path}")["filename"] == str(path)
    for bad in ("mysql://x/y", "sqlite://relative.db"):
        with pytest.raises(ValueError):
            bind_arguments(bad)


def test_two_stores_in_one_process_are_independent(tmp_path):
    first = Store(f"sqlite:///{tmp_path}/one.db")
    second = Store("sqlite://:sharedmemory:")
    try:
        account = first.accounts.create("u1", "u1@example.com", name="A", policy="p",
                                        owner_role="top")
        assert second.accounts.list_for_user("u1", 10) == ([], None)
        assert first.accounts.role_of(account["id"], "u1") == "top"
        assert first.ping() and second.ping()
    finally:
        first.close()
        second.close()


def test_ping_is_false_when_the_database_is_gone(tmp_path):
    db_path = tmp_path / "gone.db"
    store = Store(f"sqlite:///{db_path}")
    store.close()
    db_path.unlink()
    db_path.mkdir()  # a directory where the file was: every connection fails
    assert store.ping() is False


def test_unique_race_inside_a_transaction_becomes_conflict(store):
    """Whatever write loses on a unique key, callers see Conflict, not a Pony error."""
    store.users.ensure("u1", "u1@example.com")

    def duplicate_user():
        store.db.User(id="u1", email="again@example.com", email_lower="again@example.com")

    with pytest.raises(Conflict):
        store.users._write(duplicate_user)
    assert store.users.get("u1")["email"] == "u1@example.com"


def test_users_ensure_refreshes_email_and_keeps_names(store, new_account, decide,
                                                      make_message):
    account = new_account("alice")
    _, token = store.invitations.create(account["id"], "alice", email="carol@example.com",
                                        role="read", first_name="Carol", last_name="King",
                                        decide=decide, make_message=make_message,
                                        rules=InvitationRules(3600))
    store.invitations.accept(token, "carol", "carol@example.com")

    user = store.users.ensure("carol", "Carol@New.example")

    assert user == {"id": "carol", "email": "Carol@New.example", "first_name": "Carol",
                    "last_name": "King"}
    assert store.members.get(account["id"], "carol")["email"] == "Carol@New.example"


def test_one_user_creates_a_bounded_number_of_accounts_per_hour(store, clock):
    def create(user, name):
        return store.accounts.create(user, f"{user}@example.com", name=name, policy="testpol",
                                     owner_role="owner", per_user_per_hour=2)

    create("alice", "One")
    clock.advance(minutes=30)
    create("alice", "Two")
    with pytest.raises(RateLimited) as raised:
        create("alice", "Three")
    assert raised.value.retry_after_seconds == 30 * 60
    assert len(store.accounts.list_for_user("alice", 10)[0]) == 2
    create("zoe", "Hers")  # per user
    clock.advance(minutes=30, seconds=1)
    create("alice", "Three")
