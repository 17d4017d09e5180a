"""Invitations: single-use hashed tokens, expiry, resend, revoke, rate limit, email scope.

Time moves with the fake clock, never with sleep. "One account per email" is checked
for members; addresses compare case-insensitively and
are otherwise literal.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from pony.orm import db_session

from rolebook.storage import (
    Conflict,
    Denied,
    Gone,
    InvitationRules,
    NotFound,
    RateLimited,
    Store,
    WrongUser,
)
from rolebook.storage.base import encode_cursor
from tests.support.markers import postgres_only

TABLES = ("rb_user", "rb_account", "rb_membership", "rb_invitation", "rb_email_claim",
          "rb_audit_event", "rb_outbox")


def dump(store) -> str:
    """Every row of every table, as text: what an attacker with the database would see."""
    with db_session:
        return "\n".join(repr(row) for table in TABLES
                         for row in store.db.select(f"SELECT * FROM {table}"))


def test_create_queues_mail_and_audits(store, new_account, invite):
    account = new_account("alice")

    invitation, token = invite(account["id"], "Bob@Example.com", "edit")

    assert invitation["id"].startswith("inv_") and len(token) >= 43
    assert invitation["status"] == "pending" and invitation["delivery_status"] == "queued"
    assert store.invitations.get(account["id"], invitation["id"]) == invitation
    [message] = store.outbox.due(limit=10)
    assert message["to"] == "Bob@Example.com" and token in message["text"]
    assert message["invitation_id"] == invitation["id"]
    event = store.audit.list(account["id"], 1)[0][0]
    assert (event["action"], event["target"], event["rule"]) == (
        "invitation.created", invitation["id"], "grant-up-to-own")


def test_token_is_stored_only_as_its_hash(store, new_account, invite):
    account = new_account("alice")
    invitation, token = invite(account["id"], "bob@example.com")
    [message] = store.outbox.due()
    store.outbox.mark_sent(message["id"])

    rows = dump(store)

    assert token not in rows
    assert hashlib.sha256(token.encode()).hexdigest() in rows
    assert store.invitations.get(account["id"], invitation["id"])["delivery_status"] == "sent"


def test_denied_invitation_creates_nothing(store, new_account, invite, join):
    account = new_account("alice")
    join(account["id"], "bob", "edit")

    with pytest.raises(Denied):
        invite(account["id"], "x@example.com", "owner", actor="bob")
    with pytest.raises(NotFound):
        invite(account["id"], "x@example.com", "read", actor="mallory")

    assert store.invitations.list(account["id"], 10)[0][0]["email"] == "bob@example.com"
    assert len(store.invitations.list(account["id"], 10)[0]) == 1


def test_accept_once_then_gone(store, new_account, invite):
    account = new_account("alice")
    _, token = invite(account["id"], "Bob@Example.com", "edit")

    result = store.invitations.accept(token, "bob", "bob@EXAMPLE.com")

    assert result["member"]["role"] == "edit" and result["account"]["id"] == account["id"]
    assert result["invitation"]["status"] == "accepted"
    assert result["invitation"]["accepted_by"] == "bob"
    assert store.accounts.role_of(account["id"], "bob") == "edit"
    with pytest.raises(Gone):
        store.invitations.accept(token, "bob", "bob@example.com")
    with pytest.raises(NotFound):
        store.invitations.accept("not-a-token", "bob", "bob@example.com")
    assert store.audit.list(account["id"], 1)[0][0]["action"] == "invitation.accepted"


def test_wrong_user_is_denied_and_invitation_stays_usable(store, new_account, invite):
    account = new_account("alice")
    _, token = invite(account["id"], "bob@example.com")

    with pytest.raises(WrongUser) as raised:
        store.invitations.accept(token, "eve", "eve@example.com")
    assert isinstance(raised.value, Denied)
    with pytest.raises(WrongUser):  # no dot or plus folding
        store.invitations.accept(token, "eve", "bob+x@example.com")

    store.invitations.accept(token, "bob", "bob@example.com")
    assert store.accounts.role_of(account["id"], "eve") is None


def test_already_a_member_cannot_accept_or_be_invited(store, new_account, invite, join):
    account = new_account("alice")
    join(account["id"], "bob")

    with pytest.raises(Conflict):
        invite(account["id"], "BOB@example.com")
    _, token = invite(account["id"], "other@example.com")
    store.users.ensure("bob", "other@example.com")  # bob's address changed meanwhile
    with pytest.raises(Conflict):
        store.invitations.accept(token, "bob", "other@example.com")


def test_one_live_invitation_per_email_per_account(store, new_account, invite, clock):
    account = new_account("alice")
    invite(account["id"], "bob@example.com", ttl=60)

    with pytest.raises(Conflict):
        invite(account["id"], "BOB@example.com")
    invite(account["id"], "bob+work@example.com")  # a different address
    clock.advance(seconds=61)
    invite(account["id"], "bob@example.com")  # the first one has expired

    statuses = sorted(i["status"] for i in store.invitations.list(account["id"], 10)[0])
    assert statuses == ["expired", "pending", "pending"]


def test_expired_invitation_is_gone_until_resent(store, new_account, invite, decide,
                                                 make_message, clock):
    account = new_account("alice")
    invitation, old_token = invite(account["id"], "bob@example.com", ttl=60)
    clock.advance(seconds=60)

    with pytest.raises(Gone):
        store.invitations.accept(old_token, "bob", "bob@example.com")
    resent, token = store.invitations.resend(account["id"], "alice", invitation["id"],
                                             decide=decide, make_message=make_message,
                                             rules=InvitationRules(3600))

    assert token != old_token and resent["status"] == "pending"
    assert resent["expires_at"] > invitation["expires_at"]
    with pytest.raises(NotFound):
        store.invitations.accept(old_token, "bob", "bob@example.com")
    messages = store.outbox.due()
    assert [m["invitation_id"] for m in messages] == [invitation["id"]]
    assert token in messages[0]["text"]  # the unsent mail for the old token was dropped
    store.invitations.accept(token, "bob", "bob@example.com")
    assert store.audit.list(account["id"], 2)[0][1]["action"] == "invitation.resent"


def test_revoke_then_gone(store, new_account, invite, decide, make_message, join):
    account = new_account("alice")
    join(account["id"], "bob", "edit")
    owner_invite, _ = invite(account["id"], "boss@example.com", "owner")
    invitation, token = invite(account["id"], "carol@example.com")

    with pytest.raises(Denied):
        store.invitations.revoke(account["id"], "bob", owner_invite["id"], decide=decide)
    revoked = store.invitations.revoke(account["id"], "bob", invitation["id"], decide=decide)

    assert revoked["status"] == "revoked" and revoked["revoked_at"]
    with pytest.raises(Gone):
        store.invitations.accept(token, "carol", "carol@example.com")
    with pytest.raises(Gone):
        store.invitations.revoke(account["id"], "alice", invitation["id"], decide=decide)
    with pytest.raises(Gone):
        store.invitations.resend(account["id"], "alice", invitation["id"], decide=decide,
                                 make_message=make_message, rules=InvitationRules(60))
    with pytest.raises(NotFound):
        store.invitations.revoke(account["id"], "alice", "inv_nope", decide=decide)
    assert [m["to"] for m in store.outbox.due()] == ["bob@example.com", "boss@example.com"]


def test_list_filters_by_status_and_pages_newest_first(store, new_account, invite, clock,
                                                      decide):
    account = new_account("alice")
    ids = []
    for i in range(5):
        ids.append(invite(account["id"], f"u{i}@example.com", ttl=3600 * (i + 1))[0]["id"])
    clock.advance(seconds=3601)  # u0 expires
    store.invitations.revoke(account["id"], "alice", ids[1], decide=decide)
    clock.advance(seconds=1)
    ids.append(invite(account["id"], "late@example.com")[0]["id"])

    seen, cursor = [], None
    while True:
        items, cursor = store.invitations.list(account["id"], 2, cursor)
        seen += [i["id"] for i in items]
        if cursor is None:
            break

    assert seen[0] == ids[5] and sorted(seen) == sorted(ids) and len(set(seen)) == 6
    by_status = {s: [i["id"] for i in store.invitations.list(account["id"], 10, status=s)[0]]
                 for s in ("pending", "expired", "revoked", "accepted")}
    assert by_status["expired"] == [ids[0]] and by_status["revoked"] == [ids[1]]
    assert by_status["accepted"] == [] and set(by_status["pending"]) == {*ids[2:]}
    with pytest.raises(ValueError):
        store.invitations.list(account["id"], 2, encode_cursor("invitations", "bad"))
    with pytest.raises(ValueError):
        store.invitations.list(account["id"], 2, status="invited")


def test_rate_limit_counts_creates_and_resends_in_the_last_hour(
        store, new_account, invite, decide, make_message, clock):
    account = new_account("alice")
    first, _ = invite(account["id"], "a@example.com", limit=3)
    clock.advance(minutes=10)
    invite(account["id"], "b@example.com", limit=3)
    store.invitations.resend(account["id"], "alice", first["id"], decide=decide,
                             make_message=make_message,
                             rules=InvitationRules(3600, per_account_per_hour=3))

    with pytest.raises(RateLimited) as raised:
        invite(account["id"], "c@example.com", limit=3)
    assert raised.value.retry_after_seconds == 50 * 60
    other = new_account("zoe")
    invite(other["id"], "c@example.com", actor="zoe", limit=3)  # per account
    clock.advance(minutes=50, seconds=1)
    invite(account["id"], "c@example.com", limit=3)


def test_one_user_is_limited_across_all_of_their_accounts(store, new_account, decide,
                                                          make_message, clock):
    """Three accounts once sent 150 mails in 1.9 s, each under its own account's limit."""
    rules = InvitationRules(3600, per_account_per_hour=3, per_user_per_hour=4)
    mine = [new_account("alice", name=f"A{i}")["id"] for i in range(3)]

    def send(account_id, email, actor="alice"):
        return store.invitations.create(account_id, actor, email=email, role="read",
                                        rules=rules, decide=decide, make_message=make_message)

    for i, account_id in enumerate([*mine, mine[0]]):
        send(account_id, f"guest{i}@example.com")
    with pytest.raises(RateLimited) as raised:
        send(mine[2], "guest9@example.com")  # its account sent one of its three
    assert raised.value.retry_after_seconds == 3600
    send(new_account("zoe")["id"], "guest9@example.com", actor="zoe")  # per user
    clock.advance(hours=1, seconds=1)
    send(mine[2], "guest9@example.com")


def test_outbox_retries_then_gives_up(store, new_account, invite, clock):
    account = new_account("alice")
    invitation, _ = invite(account["id"], "bob@example.com")
    [message] = store.outbox.due(lease_seconds=60)
    assert store.outbox.due() == []  # leased to the first sender

    store.outbox.mark_failed(message["id"], "connection refused",
                             next_attempt_at=clock.now + timedelta(seconds=120))
    clock.advance(seconds=119)
    assert store.outbox.due() == []
    clock.advance(seconds=1)
    [again] = store.outbox.due()
    store.outbox.mark_failed(again["id"], "mailbox unavailable")

    row = store.outbox.get(message["id"])
    assert (row["status"], row["attempts"], row["last_error"]) == (
        "failed", 2, "mailbox unavailable")
    seen = store.invitations.get(account["id"], invitation["id"])
    assert (seen["delivery_status"], seen["delivery_attempts"]) == ("failed", 2)
    store.outbox.mark_sent(999_999)  # a row dropped meanwhile is not an error


# ---- one account per email ------------------------------------------------------------

def single(account):
    return True


def test_single_scope_email_belongs_to_one_account(store, new_account, invite, join,
                                                   decide):
    first = new_account("alice", single=True)
    second = new_account("zoe", single=True)
    elsewhere = new_account("yan", policy="otherpol", single=True)
    join(first["id"], "bob", single=True)

    with pytest.raises(Conflict, match="belongs to another account"):
        invite(second["id"], "Bob@Example.COM", actor="zoe", single=True)
    with pytest.raises(Conflict):  # a member's address, the creator's here
        invite(second["id"], "alice@example.com", actor="zoe", single=True)
    invite(second["id"], "bob+x@example.com", actor="zoe", single=True)  # literal address
    invite(elsewhere["id"], "bob@example.com", actor="yan", single=True)  # other policy
    invite(new_account("max")["id"], "bob@example.com", actor="max")  # not single scope


def test_single_scope_pending_invitations_bind_nothing(store, new_account, invite, decide,
                                                       make_message):
    """Inviting someone else's address into your own account squats nothing: the real
    company may still invite it, and the first acceptance binds it."""
    squatter = new_account("mallory", single=True)
    company = new_account("zoe", single=True)
    squatted, _ = invite(squatter["id"], "ceo@example.com", actor="mallory", single=True)
    _, squat_token = store.invitations.resend(squatter["id"], "mallory", squatted["id"],
                                              decide=decide, make_message=make_message,
                                              rules=InvitationRules(3600, single_email_scope=True))
    _, token = invite(company["id"], "CEO@example.com", actor="zoe", single=True)

    store.invitations.accept(token, "ceo", "ceo@example.com", single_email_scope=single)

    with pytest.raises(Conflict, match="belongs to another account"):
        store.invitations.resend(squatter["id"], "mallory", squatted["id"], decide=decide,
                                 make_message=make_message,
                                 rules=InvitationRules(3600, single_email_scope=True))
    with pytest.raises(Conflict, match="belongs to another account"):
        store.invitations.accept(squat_token, "ceo", "ceo@example.com", single_email_scope=single)
    listed, _ = store.invitations.list(squatter["id"], 10, status="pending")
    assert [i["id"] for i in listed] == [squatted["id"]]  # still pending, expires as usual
    assert [a["id"] for a in store.accounts.list_for_user("ceo", 10)[0]] == [company["id"]]


def test_single_scope_claim_released_on_revoke_leave_remove_delete(
        store, new_account, invite, join, decide):
    first = new_account("alice", single=True)
    second = new_account("zoe", single=True)

    invitation, _ = invite(first["id"], "bob@example.com", single=True)
    store.invitations.revoke(first["id"], "alice", invitation["id"], decide=decide)
    join(second["id"], "bob", single=True)
    with pytest.raises(Conflict):
        invite(first["id"], "bob@example.com", single=True)

    store.members.remove(second["id"], "bob", "bob", owner_role="owner", decide=decide)  # leave
    join(first["id"], "bob", single=True)
    store.members.remove(first["id"], "alice", "bob", owner_role="owner", decide=decide)  # removal
    join(second["id"], "bob", single=True)
    store.accounts.delete(second["id"], "zoe", owner_role="owner", decide=decide)
    for email in ("bob@example.com", "zoe@example.com"):  # the deleted creator's claim too
        created, _ = invite(first["id"], email, single=True)
        assert (created["email"], created["status"]) == (email, "pending")


def test_single_scope_claim_follows_the_member_not_the_address(store, new_account, join,
                                                               invite, decide):
    first = new_account("alice", single=True)
    second = new_account("zoe", single=True)
    join(first["id"], "bob", single=True)
    store.users.ensure("bob", "bob@new.example")  # the token now carries another address
    with pytest.raises(Conflict):  # the member still holds the address it joined with
        invite(second["id"], "bob@example.com", actor="zoe", single=True)

    store.members.remove(first["id"], "bob", "bob", owner_role="owner", decide=decide)

    created, _ = invite(second["id"], "bob@example.com", actor="zoe", single=True)
    assert (created["account_id"], created["status"]) == (second["id"], "pending")


def test_single_scope_account_creation_claims_the_creator(store, new_account, invite):
    first = new_account("alice", single=True)
    _, token = invite(first["id"], "bob@example.com", single=True)
    mine = store.accounts.create("bob", "BOB@example.com", name="Mine", policy="testpol",
                                 owner_role="owner",
                                 single_email_scope=True)  # a pending invitation binds not

    with pytest.raises(Conflict):
        store.accounts.create("bob", "bob@example.com", name="Second", policy="testpol",
                              owner_role="owner", single_email_scope=True)
    with pytest.raises(Conflict):
        store.invitations.accept(token, "bob", "bob@example.com", single_email_scope=single)
    assert [a["id"] for a in store.accounts.list_for_user("bob", 10)[0]] == [mine["id"]]


@postgres_only
def test_on_postgresql_times_that_decide_come_from_the_database(database_url, monkeypatch,
                                                               decide, make_message):
    """A replica whose clock is five hours fast stamps, expires and counts by the database's
    clock, so replicas with drifting clocks agree on expiry and rate-limit windows."""
    fast = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=5)
    monkeypatch.setattr("rolebook.storage.store.utc_now", lambda: fast)
    store = Store(database_url)
    try:
        account = store.accounts.create("alice", "alice@example.com", name="Acme",
                                        policy="testpol", owner_role="owner")
        invitation, _ = store.invitations.create(
            account["id"], "alice", email="bob@example.com", role="read", decide=decide,
            make_message=make_message, rules=InvitationRules(3600, per_account_per_hour=1))
        with db_session:
            server_now = store.db.select("SELECT (now() AT TIME ZONE 'UTC')")[0]
        created = datetime.fromisoformat(invitation["created_at"].removesuffix("Z"))
        assert abs((server_now - created).total_seconds()) < 60
        expires = datetime.fromisoformat(invitation["expires_at"].removesuffix("Z"))
        assert expires - created == timedelta(hours=1)
        with pytest.raises(RateLimited) as raised:  # the window is the database's last hour
            store.invitations.create(
                account["id"], "alice", email="carol@example.com", role="read", decide=decide,
                make_message=make_message, rules=InvitationRules(3600, per_account_per_hour=1))
        assert 3500 < raised.value.retry_after_seconds <= 3600
    finally:
        store.close()
