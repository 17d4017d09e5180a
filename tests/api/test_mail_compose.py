"""Invitation email composition and mail URLs, without a server or a database.

Contract protected: the email says who invited whom to which account with
which role and carries `<public-url>/invitations/accept?token=...`, in a
plain-text and an HTML part; it is a proper RFC 5322 message (From, To,
Subject, Date, Message-ID; the Message-ID stable for one outbox row so a
retry is recognisably the same message); nothing a user typed can inject a
header or HTML; and `--mail-url` understands exactly `maildir:PATH` and
`smtp://[user:pass@]host:port[?starttls=1]`, never printing the password.
"""

from __future__ import annotations

from email import message_from_bytes, policy
from urllib.parse import parse_qs, urlsplit

import pytest

from rolebook.api.config import Config
from rolebook.api.mail.compose import accept_link, invitation_message, rfc5322, valid_address
from rolebook.api.mail.transports import MaildirTransport, SmtpTransport, from_url
from tests.support.mail import parts, read_maildir

INVITATION = {"id": "inv_1", "account_id": "acc_1", "email": "bob@example.com", "role": "edit",
              "first_name": "Bob", "last_name": "Builder", "expires_at": "2030-01-08T00:00:00Z"}
TOKEN = "tok-EN_123"


def compose(**overrides):
    args = {"account_name": "Acme", "inviter": "Alice (alice@example.com)",
            "public_url": "https://rb.example/", "ttl_hours": 168, **overrides}
    return invitation_message(INVITATION, TOKEN, **args)


def as_row(composed, row_id=7):
    to, subject, text, html = composed
    return {"id": row_id, "to": to, "subject": subject, "text": text, "html": html,
            "invitation_id": INVITATION["id"]}


def test_message_names_inviter_account_role_and_carries_the_link():
    to, subject, text, html = compose()
    link = "https://rb.example/invitations/accept?token=tok-EN_123"
    assert to == "bob@example.com"
    assert "Alice" in subject and "Acme" in subject
    for body in (text, html):
        assert link in body
        assert "Alice (alice@example.com)" in body
        assert "Acme" in body
        assert "edit" in body
        assert "Bob Builder" in body
        assert "168 hours" in body
    assert f'href="{link}"' in html


def test_the_link_quotes_the_token():
    link = accept_link("http://h:8080", "a+b/c=")
    assert parse_qs(urlsplit(link).query)["token"] == ["a+b/c="]


def test_user_text_cannot_inject_html_or_headers():
    to, subject, text, html = compose(account_name="<script>x</script>\r\nBcc: eve@example.com")
    assert "<script>" not in html and "&lt;script&gt;" in html
    message = rfc5322(as_row((to, subject, text, html)), "rolebook@example.com")
    raw = message.as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None
    assert "\n" not in str(parsed["Subject"])


def test_rfc5322_headers_and_both_parts():
    row = as_row(compose())
    message = rfc5322(row, "Rolebook <noreply@rb.example>")
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["From"] == "Rolebook <noreply@rb.example>"
    assert parsed["To"] == "bob@example.com"
    assert parsed["Subject"] == row["subject"]
    assert parsed["Date"].datetime is not None
    assert parsed["Message-ID"] == "<rolebook.inv_1.7@rb.example>"
    assert parsed.get_content_type() == "multipart/alternative"
    text, html = parts(parsed)
    assert text.strip() == row["text"].strip() and html.strip() == row["html"].strip()
    # The same row keeps its Message-ID on a retry; another row gets another one.
    assert rfc5322(row, "noreply@rb.example")["Message-ID"] == parsed["Message-ID"]
    assert rfc5322(as_row(compose(), 8), "noreply@rb.example")["Message-ID"] != parsed[
        "Message-ID"]


def test_non_ascii_names_survive_the_round_trip():
    composed = invitation_message({**INVITATION, "first_name": "Zoë", "last_name": "Ångström"},
                                  TOKEN, account_name="Café", inviter="Ünal",
                                  public_url="http://x", ttl_hours=1)
    raw = rfc5322(as_row(composed), "rb@x.example").as_bytes()
    assert raw.isascii()  # encoded for 7-bit transport
    text, html = parts(message_from_bytes(raw, policy=policy.default))
    assert "Zoë Ångström" in text and "Café" in html and "Ünal" in text
    assert "Café" in str(message_from_bytes(raw, policy=policy.default)["Subject"])


@pytest.mark.parametrize("address, ok", [
    ("bob@example.com", True), ("name+client1@gmail.com", True), ("Na.Me@Gmail.COM", True),
    ("no-at-sign", False), ("a@b@c", False), ("@example.com", False), ("bob@", False),
    ("bob @example.com", False), ("bob@example.com\r\nBcc: x@y", False),
    ("Bob <bob@example.com>", False), ("a@b.com,c@d.com", False),
])
def test_valid_address(address, ok):
    assert valid_address(address) is ok


def test_mail_urls():
    maildir = from_url("maildir:/srv/mail")
    assert isinstance(maildir, MaildirTransport) and str(maildir.path) == "/srv/mail"
    default = from_url(Config(data_dir="/data").effective_mail_url)
    assert isinstance(default, MaildirTransport) and str(default.path) == "/data/mail"

    smtp = from_url("smtp://mailer:p%40ss@smtp.example:2525?starttls=1")
    assert isinstance(smtp, SmtpTransport)
    assert (smtp.host, smtp.port, smtp.user, smtp.password, smtp.starttls) == (
        "smtp.example", 2525, "mailer", "p@ss", True)
    assert "p@ss" not in repr(smtp) and "p%40ss" not in repr(smtp)
    plain = from_url("smtp://127.0.0.1:25")
    assert (plain.user, plain.password, plain.starttls) == (None, None, False)
    for bad in ("http://x", "smtp://", "maildir:", "mbox:/tmp/x", ""):
        with pytest.raises(ValueError):
            from_url(bad)


def test_maildir_transport_creates_the_box_and_delivers(tmp_path):
    box = tmp_path / "deep" / "mail"
    MaildirTransport(box).send(rfc5322(as_row(compose()), "rb@x.example"))
    [message] = read_maildir(box)
    assert message["To"] == "bob@example.com"
    assert (box / "new").is_dir() and not any((box / "tmp").iterdir())
    assert box.stat().st_mode & 0o077 == 0  # tokens inside: owner only
