"""Races: concurrent changes must never break an invariant.

Each racing call runs on its own thread, with its own db_session, against one Store;
a barrier releases them together. The account row lock (BEGIN IMMEDIATE on SQLite,
SELECT ... FOR UPDATE on PostgreSQL) makes facts such as the owner count exact, and
the unique key on email claims settles races between different accounts.
"""

from __future__ import annotations

import threading
from functools import partial

import pytest
from pony.orm import db_session

from rolebook.storage import Conflict, Gone, claims
from tests.support.markers import postgres_only

ROUNDS = 6


def owners(store, account_id):
    return [m["user_id"] for m in store.members.list(account_id, 10, role="owner")[0]]


def two_owner_account(store, new_account, join, decide):
    account = new_account("alice")
    join(account["id"], "bob", "read")
    store.members.change_role(account["id"], "alice", "bob", new_role="owner", owner_role="owner",
                              decide=decide)
    return account["id"]


def outcome(results):
    oks = [value for kind, value in results if kind == "ok"]
    errors = [value for kind, value in results if kind == "err"]
    return oks, errors


def test_two_owners_demoting_each_other_keep_one_owner(store, new_account, join, decide,
                                                       race):
    for _ in range(ROUNDS):
        account_id = two_owner_account(store, new_account, join, decide)

        results = race(
            lambda a=account_id: store.members.change_role(
                a, "alice", "bob", new_role="read", owner_role="owner", decide=decide),
            lambda a=account_id: store.members.change_role(
                a, "bob", "alice", new_role="read", owner_role="owner", decide=decide),
        )

        oks, errors = outcome(results)
        assert len(oks) == 1 and len(errors) == 1, results
        assert isinstance(errors[0], Conflict)
        assert len(owners(store, account_id)) == 1


def test_two_owners_leaving_at_once_keep_one_owner(store, new_account, join, decide, race):
    for _ in range(ROUNDS):
        account_id = two_owner_account(store, new_account, join, decide)

        results = race(
            lambda a=account_id: store.members.remove(a, "alice", "alice", owner_role="owner",
                                                      decide=decide),
            lambda a=account_id: store.members.remove(a, "bob", "bob", owner_role="owner",
                                                      decide=decide),
        )

        oks, errors = outcome(results)
        assert len(oks) == 1 and isinstance(errors[0], Conflict), results
        assert len(owners(store, account_id)) == 1


def test_owner_count_after_many_concurrent_demotions(store, new_account, join, decide, race):
    account = new_account("alice")
    for user in ("bob", "carol", "dave"):
        join(account["id"], user, "read")
        store.members.change_role(account["id"], "alice", user, new_role="owner",
                                  owner_role="owner", decide=decide)
    everyone = ["alice", "bob", "carol", "dave"]

    race(*[lambda me=me: store.members.change_role(account["id"], me, me, new_role="read",
                                                   owner_role="owner",
                                                   decide=decide) for me in everyone])

    assert len(owners(store, account["id"])) == 1
    assert store.accounts.get(account["id"])["version"] == 1 + 3 * 2 + 3


def test_the_same_invitation_is_accepted_once(store, new_account, invite, race):
    for _ in range(ROUNDS):
        account = new_account("alice")
        _, token = invite(account["id"], "bob@example.com")

        results = race(
            lambda t=token: store.invitations.accept(t, "bob", "bob@example.com"),
            lambda t=token: store.invitations.accept(t, "bob2", "BOB@example.com"),
        )

        oks, errors = outcome(results)
        assert len(oks) == 1 and isinstance(errors[0], Gone), results
        members = [m["user_id"] for m in store.members.list(account["id"], 10)[0]]
        assert sorted(members) == sorted(["alice", oks[0]["member"]["user_id"]])


def one_account_only(account):
    return True


def test_one_email_accepted_into_two_accounts_at_once(store, new_account, invite, race):
    """Invitations bind nothing (storage.claims); the acceptances race for the address."""
    for round_ in range(ROUNDS):
        first = new_account(f"alice{round_}", single=True)
        second = new_account(f"zoe{round_}", single=True)
        email = f"bob{round_}@example.com"
        _, first_token = invite(first["id"], email, actor=f"alice{round_}", single=True)
        _, second_token = invite(second["id"], email.upper(), actor=f"zoe{round_}",
                                 single=True)

        results = race(*(partial(store.invitations.accept, token, f"bob{round_}", email,
                                 single_email_scope=one_account_only)
                         for token in (first_token, second_token)))

        oks, errors = outcome(results)
        assert len(oks) == 1 and isinstance(errors[0], Conflict), results
        assert len(store.accounts.list_for_user(f"bob{round_}", 10)[0]) == 1


@postgres_only
def test_losing_the_unique_key_race_is_a_conflict(store, new_account, invite, monkeypatch):
    """Force the interleaving: B's acceptance commits its claim after A found the address
    free and before A's claim is written. (Two sign-ins with one address: one user's two
    acceptances queue on that user's row instead.)

    Only PostgreSQL lets two writers in at once; SQLite serialises every write
    transaction, so there the check always sees the other claim (tested above).
    """
    first = new_account("alice", single=True)
    second = new_account("zoe", single=True)
    _, first_token = invite(first["id"], "bob@example.com", single=True)
    _, second_token = invite(second["id"], "bob@example.com", actor="zoe", single=True)
    look, inner = claims.holder, {}

    def found_free_then_lose(db, policy, email_lower):
        found = look(db, policy, email_lower)
        if inner:
            return found
        inner["started"] = True

        def other():
            try:
                inner["result"] = store.invitations.accept(second_token, "bob-twin",
                                                           "bob@example.com",
                                                           single_email_scope=one_account_only)
            except Exception as e:
                inner["error"] = e

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the other account's acceptance blocked"
        return found

    monkeypatch.setattr(claims, "holder", found_free_then_lose)
    with pytest.raises(Conflict):
        store.invitations.accept(first_token, "bob", "bob@example.com",
                                 single_email_scope=one_account_only)

    assert "result" in inner, inner
    assert store.accounts.list_for_user("bob", 10)[0] == []
    assert [a["id"] for a in store.accounts.list_for_user("bob-twin", 10)[0]] == [second["id"]]
    with db_session:
        holders = store.db.select("SELECT account_id FROM rb_email_claim"
                                  " WHERE email_lower = 'bob@example.com'")
    assert holders == [second["id"]]


def test_first_requests_of_a_new_user_at_once(store, race):
    results = race(*[lambda: store.users.ensure("u1", "u1@example.com") for _ in range(4)])

    assert all(kind == "ok" for kind, _ in results), results
    assert store.users.get("u1")["email"] == "u1@example.com"



def test_facts_are_read_under_the_account_lock(store, new_account, join, decide):
    """Bob's change starts while Alice's transaction is deciding; it must wait, then see it.

    Alice's `decide` starts Bob's demotion on another thread and gives it a moment. With
    the lock Bob cannot finish before Alice commits, whatever the moment's length, so
    the outcome below is certain; without the lock both would succeed and leave no owner.
    """
    account_id = two_owner_account(store, new_account, join, decide)
    bob = {}

    def bob_demotes_alice():
        try:
            bob["result"] = store.members.change_role(account_id, "bob", "alice", new_role="read",
                                                      owner_role="owner", decide=decide)
        except Exception as e:
            bob["error"] = e

    thread = threading.Thread(target=bob_demotes_alice)

    def alice_decides(kind, action, role, attr):
        if not thread.is_alive() and not bob:
            thread.start()
            thread.join(timeout=1)  # bob must still be waiting for the lock
        return decide(kind, action, role, attr)

    store.members.change_role(account_id, "alice", "bob", new_role="read", owner_role="owner",
                              decide=alice_decides)
    thread.join(timeout=60)

    assert isinstance(bob.get("error"), Conflict), bob
    assert owners(store, account_id) == ["alice"]


def test_a_new_user_creating_accounts_in_parallel(store, race):
    results = race(*[
        partial(store.accounts.create, "newbie", "newbie@example.com", name=f"A{i}",
                policy="testpol", owner_role="owner") for i in range(3)])

    assert all(kind == "ok" for kind, _ in results), results
    assert len(store.accounts.list_for_user("newbie", 10)[0]) == 3
