"""Invitation mail over SMTP, against a real aiosmtpd server on 127.0.0.1.

Contract protected: with `--mail-url smtp://...` the invitation email is
delivered over SMTP with both parts and the accept link (logging in when the
URL carries credentials); when the SMTP server is down the invitation is
still created (201) and its delivery shows as queued with attempts and the
error, and once a server listens on that port the email is retried and
delivered; a permanent refusal (5xx for the recipient), too many failures,
or an unsupported STARTTLS end as delivery `failed`, and a resend queues a
fresh email.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.support.client import User
from tests.support.live import free_port
from tests.support.mail import parts, token_of, wait_for
from tests.support.markers import sqlite_only

pytestmark = sqlite_only


class Sink:
    """An SMTP handler that keeps every message and refuses the addresses it is told to."""

    def __init__(self, refuse: tuple[str, ...] = ()):
        self.messages, self.refuse, self.logins = [], set(refuse), []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content,
                                                policy=policy.default))
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"p@ss")


@contextlib.contextmanager
def smtp_server(port: int, sink: Sink, **options):
    controller = Controller(sink, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def smtp_port():
    return free_port()


@pytest.fixture
def mail_settings():
    """Overridden per test with parametrize: url suffix/credentials and sender knobs."""
    return {}


@pytest.fixture
def config(config, smtp_port, mail_settings):
    settings = dict(mail_settings)
    auth = settings.pop("auth", "")
    query = settings.pop("query", "")
    return replace(config, mail_url=f"smtp://{auth}127.0.0.1:{smtp_port}{query}",
                   mail_from="Rolebook <noreply@rolebook.test>",
                   extra={"mail_retry_base_seconds": 0.02, "mail_retry_cap_seconds": 0.2,
                          "mail_poll_seconds": 0.02, **settings})


def setup_invitation(user) -> tuple[User, str, dict]:
    alice = user("alice")
    account = alice.post("/v1/accounts", {"name": "Acme"}).json["id"]
    created = alice.post(f"/v1/accounts/{account}/invitations",
                         {"email": "bob@example.com", "role": "edit"})
    assert created.status == 201, created.json
    return alice, account, created.json


def state(alice: User, account: str, invitation_id: str) -> dict:
    return alice.get(f"/v1/accounts/{account}/invitations/{invitation_id}").json


def test_delivered_over_smtp_with_both_parts(user, smtp_port):
    sink = Sink()
    with smtp_server(smtp_port, sink):
        alice, account, inv = setup_invitation(user)
        [message] = wait_for(lambda: sink.messages, what="an SMTP delivery")
        assert wait_for(lambda: state(alice, account, inv["id"])["delivery_status"] == "sent",
                        what="delivery_status sent")
    assert message["To"] == "bob@example.com"
    assert message["From"] == "Rolebook <noreply@rolebook.test>"
    assert message["Message-ID"] and message["Date"]
    text, html = parts(message)
    token = token_of(message)
    assert token in text and token in html and "edit" in html and "alice@example.com" in text
    accepted = user("bob").post("/v1/invitations/accept", {"token": token})
    assert accepted.status == 200, accepted.json


@pytest.mark.parametrize("mail_settings", [{"auth": "mailer:p%40ss@"}], ids=["login"])
def test_logs_in_with_the_credentials_of_the_url(user, smtp_port):
    sink = Sink()
    with smtp_server(smtp_port, sink, authenticator=sink.authenticate, auth_require_tls=False):
        setup_invitation(user)
        wait_for(lambda: sink.messages, what="an authenticated SMTP delivery")
    assert sink.logins == [(b"mailer", b"p@ss")]


@pytest.mark.parametrize("mail_settings", [{"mail_max_attempts": 1000}], ids=["patient"])
def test_smtp_down_then_up_retries_and_delivers(user, smtp_port):
    alice, account, inv = setup_invitation(user)  # nothing listens on smtp_port yet
    assert inv["delivery_status"] == "queued"
    failing = wait_for(lambda: (lambda s: s if s["delivery_attempts"] >= 2 else None)(
        state(alice, account, inv["id"])), what="two failed delivery attempts")
    assert failing["delivery_status"] == "queued"  # still to be retried
    assert "refused" in failing["last_error"].lower()

    sink = Sink()
    with smtp_server(smtp_port, sink):
        [message] = wait_for(lambda: sink.messages, what="the retried delivery")
        done = wait_for(lambda: (lambda s: s if s["delivery_status"] == "sent" else None)(
            state(alice, account, inv["id"])), what="delivery_status sent")
    assert done["delivery_attempts"] > failing["delivery_attempts"]
    assert token_of(message)
    assert len(sink.messages) == 1


@pytest.mark.parametrize("mail_settings", [{"mail_max_attempts": 3}], ids=["impatient"])
def test_gives_up_after_max_attempts_and_resend_queues_again(user, smtp_port):
    alice, account, inv = setup_invitation(user)
    failed = wait_for(lambda: (lambda s: s if s["delivery_status"] == "failed" else None)(
        state(alice, account, inv["id"])), what="delivery given up")
    assert failed["delivery_attempts"] == 3 and failed["last_error"]
    assert failed["status"] == "pending"  # the invitation itself is fine

    sink = Sink()
    with smtp_server(smtp_port, sink):
        resent = alice.post(f"/v1/accounts/{account}/invitations/{inv['id']}/resend")
        assert resent.status == 200 and resent.json["delivery_status"] == "queued"
        wait_for(lambda: sink.messages, what="the resent email")
        assert wait_for(lambda: state(alice, account, inv["id"])["delivery_status"] == "sent",
                        what="delivery_status sent after resend")


def test_permanent_refusal_fails_at_once(user, smtp_port):
    sink = Sink(refuse=("bob@example.com",))
    with smtp_server(smtp_port, sink):
        alice, account, inv = setup_invitation(user)
        failed = wait_for(lambda: (lambda s: s if s["delivery_status"] == "failed" else None)(
            state(alice, account, inv["id"])), what="delivery refused")
    assert failed["delivery_attempts"] == 1
    assert "550" in failed["last_error"]
    assert sink.messages == []


@pytest.mark.parametrize("mail_settings", [{"query": "?starttls=1", "mail_max_attempts": 1}],
                         ids=["starttls"])
def test_starttls_is_required_when_asked(user, smtp_port):
    sink = Sink()
    with smtp_server(smtp_port, sink):  # offers no STARTTLS
        alice, account, inv = setup_invitation(user)
        failed = wait_for(lambda: (lambda s: s if s["delivery_status"] == "failed" else None)(
            state(alice, account, inv["id"])), what="STARTTLS failure")
    assert "STARTTLS" in failed["last_error"]
    assert sink.messages == []  # never sent in the clear
