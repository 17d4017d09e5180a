"""The accept page (`GET /invitations/accept?token=`), in process, on SQLite and PostgreSQL.

Contract protected: the link in an invitation email opens an HTML page, without
sign-in, that shows the account, role, invited address, expiry and status of
the invitation; viewing it never uses the invitation (accepting still works
afterwards); an unknown or replaced token is a "not valid" page (404); a used,
withdrawn or expired invitation says so (410); a missing or empty token is 400;
all of them HTML. Every value from storage is escaped, and every answer carries
a Content-Security-Policy that admits only the page's own inline script and
style by hash, plus nosniff, no-referrer and no-store.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from dataclasses import replace

import pytest

from rolebook.storage.errors import NotFound
from tests.support.fast_mail import FAST_MAIL, services_on_clock  # noqa: F401 (a fixture)
from tests.support.mail import token_of, wait_for_mail

PAGE = "/invitations/accept"


@pytest.fixture
def config(config):
    return replace(config, extra=FAST_MAIL)


def invite(user, maildir, account_name="Acme", email="bob@example.com", role="edit",
           **names) -> tuple[str, dict, str]:
    """(account id, invitation, token from the email) for a fresh account made by alice."""
    alice = user("alice")
    account = alice.post("/v1/accounts", {"name": account_name})
    assert account.status == 201, account.json
    created = alice.post(f"/v1/accounts/{account.json['id']}/invitations",
                         {"email": email, "role": role, **names})
    assert created.status == 201, created.json
    [message] = wait_for_mail(maildir, email)
    return account.json["id"], created.json, token_of(message)


def page(client, token: str | None = None, query: str | None = None):
    if query is not None:
        return client.simulate_get(PAGE, query_string=query)
    return client.simulate_get(PAGE, params={} if token is None else {"token": token})


def assert_page_headers(result):
    assert result.headers["content-type"] == "text/html; charset=utf-8"
    assert result.headers["x-content-type-options"] == "nosniff"
    assert result.headers["referrer-policy"] == "no-referrer"
    assert result.headers["cache-control"] == "no-store"
    csp = dict(part.strip().split(" ", 1)
               for part in result.headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'none'"
    assert csp["connect-src"] == "'self'"
    assert csp["base-uri"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert "unsafe" not in result.headers["content-security-policy"]
    # Exactly the page's own inline script and style, by the hash of their text.
    for tag, directive in (("script", "script-src"), ("style", "style-src")):
        [body] = re.findall(rf"<{tag}>(.*?)</{tag}>", result.text, re.S)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert csp[directive] == f"'sha256-{digest}'"
    assert "<script src" not in result.text and "<link" not in result.text
    assert "http://" not in result.text and "https://" not in result.text


def test_page_shows_the_invitation_and_viewing_it_does_not_use_it(client, user, maildir):
    account, invitation, token = invite(user, maildir, first_name="Bob")
    for _ in range(2):
        shown = page(client, token)
        assert shown.status_code == 200, shown.text
        assert_page_headers(shown)
        text = shown.text
        assert "Acme" in text and "<strong>edit</strong>" in text and "bob@example.com" in text
        assert "Hello Bob," in text
        assert invitation["expires_at"] in text  # in <time datetime="...">
        assert "waiting for you to accept" in text
        assert '<label for="signin-token">Your sign-in token</label>' in text
        assert "rolebook token --sub" in text and ">Accept invitation</button>" in text
        assert f'data-token="{token}"' in text

    bob = user("bob", "bob@example.com")
    assert bob.post("/v1/invitations/accept", {"token": token}).status == 200
    assert bob.get(f"/v1/accounts/{account}").json["role"] == "edit"

    used = page(client, token)
    assert used.status_code == 410
    assert_page_headers(used)
    assert "already been used" in used.text and "already used" in used.text
    assert "Acme" in used.text and 'id="accept-form"' not in used.text


def test_storage_values_are_escaped(client, user, maildir):
    evil = "<script>alert(1)</script>"
    quote = '"><img src=x onerror=alert(2)>'
    _, _, token = invite(user, maildir, account_name=evil, first_name=quote, last_name="O'Hara")
    shown = page(client, token)
    assert shown.status_code == 200
    text = shown.text
    assert evil not in text and "<img" not in text
    assert html.escape(evil) in text
    assert f'data-account="{html.escape(evil, quote=True)}"' in text
    assert html.escape(quote) in text and "O&#x27;Hara" in text
    assert text.count("<script") == 1  # the page's own, nothing from storage
    assert_page_headers(shown)


def test_missing_or_empty_token_is_400_html(client):
    for query in ("", "token=", "token=%20%20"):
        result = page(client, query=query)
        assert result.status_code == 400, query
        assert_page_headers(result)
        assert "This invitation link is incomplete" in result.text


def test_unknown_replaced_or_unreadable_token_is_404_html(client, user, maildir):
    for query in ("no-such-token", "x" * 5000, "%00", "%ED%A0%80", "%FF%FE"):
        result = page(client, query="token=" + query)
        assert result.status_code == 404, query
        assert_page_headers(result)
        assert "This invitation link is not valid" in result.text

    account, invitation, token = invite(user, maildir)
    alice = user("alice")
    resent = alice.post(f"/v1/accounts/{account}/invitations/{invitation['id']}/resend")
    assert resent.status == 200, resent.json
    assert page(client, token).status_code == 404  # replaced by the newer email's link
    newer = [token_of(m) for m in wait_for_mail(maildir, "bob@example.com", count=2)]
    assert {page(client, t).status_code for t in newer if t != token} == {200}


def test_withdrawn_and_expired_invitations_are_410_html(client, user, maildir, clock):
    account, invitation, token = invite(user, maildir)
    alice = user("alice")
    assert alice.delete(f"/v1/accounts/{account}/invitations/{invitation['id']}").status == 200
    withdrawn = page(client, token)
    assert withdrawn.status_code == 410
    assert_page_headers(withdrawn)
    assert "This invitation was withdrawn" in withdrawn.text

    created = alice.post(f"/v1/accounts/{account}/invitations",
                         {"email": "carol@example.com", "role": "read"})
    assert created.status == 201
    carol_token = token_of(wait_for_mail(maildir, "carol@example.com")[0])
    clock.advance(days=365)
    expired = page(client, carol_token)
    assert expired.status_code == 410
    assert "This invitation has expired" in expired.text and "<strong>read</strong>" in expired.text


def test_preview_reads_without_consuming(services, client, user, maildir):
    _, invitation, token = invite(user, maildir, role="read")
    preview = services.store.invitations.preview(token)
    assert preview["account"]["name"] == "Acme"
    assert (preview["invitation"]["id"], preview["invitation"]["status"]) == (
        invitation["id"], "pending")
    again = services.store.invitations.preview(token)  # the mail sender may have marked it sent
    assert (again["account"], again["invitation"]["status"]) == (preview["account"], "pending")
    with pytest.raises(NotFound):
        services.store.invitations.preview("not-" + token)
    bob = user("bob", "bob@example.com")
    assert bob.post("/v1/invitations/accept", {"token": token}).status == 200
    assert services.store.invitations.preview(token)["invitation"]["status"] == "accepted"


def test_page_needs_no_sign_in_and_ignores_a_bad_one(client, user, maildir):
    _, _, token = invite(user, maildir)
    result = client.simulate_get(PAGE, params={"token": token},
                                 headers={"Authorization": "Bearer not-a-jwt"})
    assert result.status_code == 200
