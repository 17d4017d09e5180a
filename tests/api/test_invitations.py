"""Invitations end to end in process, on SQLite and PostgreSQL.

Contract protected: an invitation is created (201 + Location, never the
token), its email lands in the Maildir with a plain-text and an HTML part
naming the inviter, the account and the role, and carrying the accept link;
the invitee (and only the invitee, by email, case-insensitively) accepts once
with that token and shows up as a member with the invitation's names. A used,
revoked or expired token answers 410, a replaced or made-up one 404 (as the
accept page does); a duplicate pending invite or
an existing member answers 409; AnyTrack's one-account-per-email rule holds
across accounts while Convert lets an address join several; invitations per
hour are limited (429 + Retry-After); and no answer, audit event or decision
log line ever carries a token.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.client import User, in_process
from tests.support.fast_mail import FAST_MAIL, services_on_clock  # noqa: F401 (a fixture)
from tests.support.mail import accept_link, parts, token_of, wait_for, wait_for_mail

RATE_LIMIT = 8


@pytest.fixture
def config(config):
    return replace(config, invitations_per_hour=RATE_LIMIT, extra=FAST_MAIL)


@pytest.fixture
def responses():
    """Every response any user of this test received, to search for leaked tokens."""
    return []


@pytest.fixture
def user(client, config, responses):
    base = in_process(client)

    def recording(method, path, body, headers):
        response = base(method, path, body, headers)
        responses.append(response)
        return response

    def make(sub: str, email: str | None = None, scope: str = "") -> User:
        return User(recording, config, sub, email, scope)
    return make


def new_account(owner: User, name: str = "Acme", policy: str = "convert") -> str:
    response = owner.post("/v1/accounts", {"name": name, "policy": policy})
    assert response.status == 201, response.json
    return response.json["id"]


def invite(inviter: User, account_id: str, email: str, role: str, **names):
    return inviter.post(f"/v1/accounts/{account_id}/invitations",
                        {"email": email, "role": role, **names})


def invitation(owner: User, account_id: str, invitation_id: str) -> dict:
    response = owner.get(f"/v1/accounts/{account_id}/invitations/{invitation_id}")
    assert response.status == 200, response.json
    return response.json


def listed(owner: User, account_id: str, status: str) -> list[str]:
    response = owner.get(f"/v1/accounts/{account_id}/invitations?status={status}")
    assert response.status == 200, response.json
    return [i["id"] for i in response.json["items"]]


def accept(invitee: User, token: str):
    return invitee.post("/v1/invitations/accept", {"token": token})


def test_whole_lifecycle_invite_mail_accept_member(user, maildir, config):
    alice, bob = user("alice"), user("bob", "Bob@Example.com")
    account = new_account(alice, "Acme Analytics")

    created = invite(alice, account, "bob@example.com", "edit",
                     first_name="Bob", last_name="Builder")
    assert created.status == 201, created.json
    inv = created.json
    assert created.headers["location"] == f"/v1/accounts/{account}/invitations/{inv['id']}"
    assert inv["status"] == "pending" and inv["role"] == "edit" and inv["invited_by"] == "alice"
    assert "token" not in inv

    [message] = wait_for_mail(maildir, "bob@example.com")
    assert message["From"] == config.mail_from
    for header in ("Subject", "Date", "Message-ID"):
        assert message[header], f"{header} header"
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    link = accept_link(message)
    assert link.startswith("http://rolebook.test/invitations/accept?token=")
    for body in (text, html):
        assert "alice@example.com" in body  # who invited
        assert "Acme Analytics" in body  # to which account
        assert '"edit"' in body or "<strong>edit</strong>" in body  # with which role
        assert token_of(message) in body
    token = token_of(message)

    assert wait_for(lambda: invitation(alice, account, inv["id"])["delivery_status"] == "sent",
                    what="delivery_status sent")

    # A signed-in user with another email cannot use it, and it stays usable.
    wrong = accept(user("mallory"), token)
    assert wrong.status == 403 and wrong.json["rule"] == "invitation-email-mismatch"
    assert invitation(alice, account, inv["id"])["status"] == "pending"

    # The invitee (email differs only in case) accepts.
    accepted = accept(bob, token)
    assert accepted.status == 200, accepted.json
    assert accepted.json["account_id"] == account
    assert accepted.json["invitation_id"] == inv["id"]
    member = accepted.json["member"]
    assert (member["user_id"], member["role"]) == ("bob", "edit")
    assert (member["first_name"], member["last_name"]) == ("Bob", "Builder")

    shown = alice.get(f"/v1/accounts/{account}/members/bob")
    assert shown.status == 200, shown.json
    assert (shown.json["role"], shown.json["first_name"], shown.json["last_name"]) == (
        "edit", "Bob", "Builder")
    after = invitation(alice, account, inv["id"])
    assert (after["status"], after["accepted_by"]) == ("accepted", "bob")
    assert inv["id"] in listed(alice, account, "accepted")
    assert inv["id"] not in listed(alice, account, "pending")

    # Single use.
    reused = accept(bob, token)
    assert reused.status == 410, reused.json


def test_accept_keeps_the_users_own_name(user, maildir):
    alice, bob = user("alice"), user("bob")
    first, second = new_account(alice, "First"), new_account(alice, "Second")
    invite(alice, first, "bob@example.com", "read", first_name="Robert")
    token = token_of(wait_for_mail(maildir, "bob@example.com")[0])
    accepted = accept(bob, token)
    assert accepted.status == 200, accepted.json
    assert accepted.json["member"]["first_name"] == "Robert"  # had none: taken

    invite(alice, second, "bob@example.com", "read", first_name="Bobby", last_name="B")
    token2 = token_of(_newest(maildir, "bob@example.com", {token}))
    member = accept(bob, token2).json["member"]
    assert (member["first_name"], member["last_name"]) == ("Robert", None)  # kept as it was


def _newest(maildir: Path, address: str, known: set[str]):
    """The message to `address` whose token is not among `known` (waits for it)."""
    def fresh():
        for message in wait_for_mail(maildir, address, count=len(known) + 1):
            if token_of(message) not in known:
                return message
        return None
    return wait_for(fresh, what=f"a new message to {address}")


def test_revoked_invitation_is_gone(user, maildir):
    alice, bob = user("alice"), user("bob")
    account = new_account(alice)
    inv = invite(alice, account, "bob@example.com", "read").json
    token = token_of(wait_for_mail(maildir, "bob@example.com")[0])

    revoked = alice.delete(f"/v1/accounts/{account}/invitations/{inv['id']}")
    assert revoked.status == 200, revoked.json
    assert revoked.json["status"] == "revoked" and revoked.json["revoked_at"]
    assert accept(bob, token).status == 410
    assert alice.delete(f"/v1/accounts/{account}/invitations/{inv['id']}").status == 410
    assert inv["id"] in listed(alice, account, "revoked")
    assert bob.get(f"/v1/accounts/{account}").status == 404  # not a member


def test_resend_replaces_the_token_and_the_expiry(user, maildir, clock):
    alice, bob = user("alice"), user("bob")
    account = new_account(alice)
    inv = invite(alice, account, "bob@example.com", "edit").json
    old = token_of(wait_for_mail(maildir, "bob@example.com")[0])

    clock.advance(hours=1)
    resent = alice.post(f"/v1/accounts/{account}/invitations/{inv['id']}/resend")
    assert resent.status == 200, resent.json
    assert resent.json["id"] == inv["id"] and resent.json["status"] == "pending"
    assert resent.json["expires_at"] > inv["expires_at"]
    assert "token" not in resent.json
    new = token_of(_newest(maildir, "bob@example.com", {old}))
    assert new != old

    assert accept(bob, old).status == 404  # replaced: indistinguishable from made up
    accepted = accept(bob, new)
    assert accepted.status == 200, accepted.json
    assert accepted.json["member"]["role"] == "edit"
    assert alice.post(f"/v1/accounts/{account}/invitations/{inv['id']}/resend").status == 410


def test_expired_invitation_is_gone_and_listed_expired(user, maildir, clock):
    alice, bob = user("alice"), user("bob")
    account = new_account(alice)
    inv = invite(alice, account, "bob@example.com", "read").json
    token = token_of(wait_for_mail(maildir, "bob@example.com")[0])

    clock.advance(hours=168, seconds=1)  # the policy's invitation_ttl_hours
    assert accept(bob, token).status == 410
    assert invitation(alice, account, inv["id"])["status"] == "expired"
    assert inv["id"] in listed(alice, account, "expired")
    assert inv["id"] not in listed(alice, account, "pending")

    # An expired invitation no longer blocks a new one; resend revives the old one too.
    assert invite(alice, account, "bob@example.com", "read").status == 201


def test_duplicate_pending_invitation_and_existing_member_are_conflicts(user, maildir):
    alice = user("alice")
    account = new_account(alice)
    assert invite(alice, account, "bob@example.com", "read").status == 201
    again = invite(alice, account, "BOB@example.com", "edit")
    assert again.status == 409, again.json
    assert again.json["type"].endswith("/conflict")

    member = invite(alice, account, "Alice@Example.com", "read")  # alice owns the account
    assert member.status == 409, member.json


def test_anytrack_email_belongs_to_one_account(user, maildir):
    """Only an accepted membership binds an address: a pending invitation elsewhere (a
    squatter's, say) blocks nobody, and the first acceptance wins."""
    alice, zoe = user("alice"), user("zoe")
    first = new_account(alice, "First", "anytrack")
    second = new_account(zoe, "Second", "anytrack")
    names = {"first_name": "Nia", "last_name": "Name"}

    assert invite(alice, first, "name@gmail.com", "member_read", **names).status == 201
    elsewhere = invite(zoe, second, "Name@Gmail.com", "member_read", **names)
    assert elsewhere.status == 201, elsewhere.json  # a pending invitation binds nothing
    other = invite(zoe, second, "name+client1@gmail.com", "member_read", **names)
    assert other.status == 201, other.json  # a different address, taken literally
    dotted = invite(zoe, second, "na.me@gmail.com", "member_read", **names)
    assert dotted.status == 201, dotted.json  # no dot folding either

    # A member of an AnyTrack account cannot be invited to another one.
    owner_elsewhere = invite(zoe, second, "alice@example.com", "member_read", **names)
    assert owner_elsewhere.status == 409, owner_elsewhere.json

    # The first acceptance binds the address; the other account's invitation is then dead.
    nia = user("nia", "name@gmail.com")
    mails = {m["To"]: token_of(m) for m in wait_for_mail(maildir, "name@gmail.com", count=2)}
    assert accept(nia, mails["name@gmail.com"]).status == 200  # the first account's
    late = accept(nia, mails["Name@Gmail.com"])
    assert late.status == 409 and "belongs to another account" in late.json["detail"]
    assert invite(zoe, second, "NAME@gmail.com", "member_read", **names).status == 409
    resend = zoe.post(f"/v1/accounts/{second}/invitations/{elsewhere.json['id']}/resend")
    assert resend.status == 409, resend.json
    assert [a["id"] for a in nia.get("/v1/accounts").json["items"]] == [first]


def test_anytrack_leaving_releases_the_address(user, maildir):
    alice, zoe = user("alice"), user("zoe")
    first = new_account(alice, "First", "anytrack")
    second = new_account(zoe, "Second", "anytrack")
    names = {"first_name": "Nia", "last_name": "Name"}
    nia = user("nia", "nia@example.com")
    assert invite(alice, first, "nia@example.com", "member_read", **names).status == 201
    assert accept(nia, token_of(wait_for_mail(maildir, "nia@example.com")[0])).status == 200
    assert invite(zoe, second, "nia@example.com", "member_read", **names).status == 409
    assert nia.delete(f"/v1/accounts/{first}/members/nia").status in (200, 204)
    assert invite(zoe, second, "nia@example.com", "member_read", **names).status == 201


def test_convert_lets_one_email_join_several_accounts(user, maildir):
    alice, zoe, bob = user("alice"), user("zoe"), user("bob")
    first, second = new_account(alice, "First"), new_account(zoe, "Second")
    assert invite(alice, first, "bob@example.com", "read").status == 201
    token = token_of(wait_for_mail(maildir, "bob@example.com")[0])
    assert accept(bob, token).status == 200
    assert invite(zoe, second, "Bob@example.com", "edit").status == 201
    token2 = token_of(_newest(maildir, "bob@example.com", {token}))
    assert accept(bob, token2).status == 200
    assert {a["id"] for a in bob.get("/v1/accounts").json["items"]} == {first, second}


def test_bad_bodies_name_the_field(user):
    alice = user("alice")
    convert, anytrack = new_account(alice), new_account(alice, "AT", "anytrack")

    role = invite(alice, convert, "bob@example.com", "manager")  # an AnyTrack role
    assert role.status == 400 and role.json["errors"][0]["field"] == "role"
    names = invite(alice, anytrack, "bob@example.com", "member_read", first_name="Bob")
    assert names.status == 400
    assert [e["field"] for e in names.json["errors"]] == ["last_name"]
    blank = invite(alice, anytrack, "bob@example.com", "member_read",
                   first_name=" ", last_name="B")
    assert blank.status == 400 and blank.json["errors"][0]["field"] == "first_name"
    for email in ("not-an-email", "bob@example.com\r\nBcc: eve@example.com",
                  "Bob <bob@example.com>", "a@b@c"):
        bad = invite(alice, convert, email, "read")
        assert bad.status == 400, (email, bad.json)
        assert bad.json["errors"][0]["field"] == "email"
    extra = alice.post(f"/v1/accounts/{convert}/invitations",
                       {"email": "bob@example.com", "role": "read", "token": "x"})
    assert extra.status == 400
    empty = alice.post("/v1/invitations/accept", {})
    assert empty.status == 400 and empty.json["errors"][0]["field"] == "token"
    assert alice.get(f"/v1/accounts/{convert}/invitations?status=lost").status == 400
    assert alice.get(f"/v1/accounts/{convert}/invitations?cursor=nonsense").status == 400


def test_unknown_ids_and_strangers(user):
    alice, eve = user("alice"), user("eve")
    account = new_account(alice)
    assert alice.get(f"/v1/accounts/{account}/invitations/inv_nope").status == 404
    assert alice.delete(f"/v1/accounts/{account}/invitations/inv_nope").status == 404
    assert alice.post(f"/v1/accounts/{account}/invitations/inv_nope/resend").status == 404
    inv = invite(alice, account, "bob@example.com", "read").json
    for response in (eve.get(f"/v1/accounts/{account}/invitations"),
                     eve.get(f"/v1/accounts/{account}/invitations/{inv['id']}"),
                     eve.delete(f"/v1/accounts/{account}/invitations/{inv['id']}"),
                     invite(eve, account, "eve2@example.com", "read")):
        assert response.status == 404, response.json  # not a member: no enumeration
    made_up = accept(eve, "made-up-token")
    assert made_up.status == 404 and made_up.json["type"].endswith("/not-found"), made_up.json


def test_list_pages_newest_first(user):
    alice = user("alice")
    account = new_account(alice)
    ids = [invite(alice, account, f"p{i}@example.com", "read").json["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = alice.get(f"/v1/accounts/{account}/invitations?{query}")
        assert page.status == 200 and len(page.json["items"]) <= 2
        seen += [i["id"] for i in page.json["items"]]
        cursor = page.json["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


def test_rate_limit_answers_429_with_retry_after(user):
    alice = user("alice")
    account = new_account(alice)
    for i in range(RATE_LIMIT):
        assert invite(alice, account, f"r{i}@example.com", "read").status == 201
    limited = invite(alice, account, "one-more@example.com", "read")
    assert limited.status == 429, limited.json
    assert 0 < int(limited.headers["retry-after"]) <= 3600
    resend = alice.post(f"/v1/accounts/{account}/invitations/"
                        f"{listed(alice, account, 'pending')[0]}/resend")
    assert resend.status == 429  # resending counts too
    other = new_account(alice, "Other")  # the limit is per account
    assert invite(alice, other, "r0@example.com", "read").status == 201


def test_no_token_in_any_answer_audit_event_or_decision_log(user, maildir, services, responses,
                                                           config, clock):
    alice, bob = user("alice"), user("bob")
    account = new_account(alice)
    inv = invite(alice, account, "bob@example.com", "edit", first_name="Bob").json
    alice.get(f"/v1/accounts/{account}/invitations")
    alice.get(f"/v1/accounts/{account}/invitations/{inv['id']}")
    # The first mail must be out before the resend: a resend drops the unsent mail of the
    # token it replaces, so without this wait a slow sender leaves bob one mail, not two.
    wait_for_mail(maildir, "bob@example.com")
    alice.post(f"/v1/accounts/{account}/invitations/{inv['id']}/resend")
    tokens = {token_of(m) for m in wait_for_mail(maildir, "bob@example.com", count=2)}
    assert len(tokens) == 2
    accept(user("mallory"), next(iter(tokens)))
    for token in tokens:
        accept(bob, token)
    other = invite(alice, account, "carol@example.com", "read").json
    tokens.add(token_of(wait_for_mail(maildir, "carol@example.com")[0]))
    alice.delete(f"/v1/accounts/{account}/invitations/{other['id']}")
    alice.get(f"/v1/accounts/{account}/audit")

    assert len(responses) >= 10
    answers = [json.dumps(r.json) + json.dumps(r.headers) for r in responses]
    audit, _ = services.store.audit.list(account, 1000)
    assert any(e["action"] == "invitation.created" for e in audit)
    services.decisions.flush()
    log = services.decisions.path
    logs = log.read_text() if log and log.exists() else ""
    assert "invitation" in logs
    for token in tokens:
        assert not any(token in answer for answer in answers)
        assert token not in json.dumps(audit)
        assert token not in logs
