"""The invitation flow through a real `rolebook serve` (two waitress processes, real sockets).

Contract protected: an invitation made over HTTP reaches the Maildir in the
server's data dir (written by the server's own outbox sender, promptly), the
invitee accepts over HTTP with the token from that message and becomes a
member; and two requests accepting the same token at the same moment (possibly
in two processes) give exactly one 200 and one 410 (or 409), never a 500, with
exactly one membership. On SQLite and on PostgreSQL (skipped, with the reason,
where no PostgreSQL answers).
"""

from __future__ import annotations

from functools import partial

import pytest

from tests.support import live, postgres
from tests.support.client import users_of
from tests.support.mail import accept_link, token_of, wait_for_mail
from tests.support.markers import BACKENDS
from tests.support.race import together

SECRET = "e2e-invitations-" + "s" * 32


@pytest.fixture(params=BACKENDS)
def server(request, tmp_path):
    flags = ["--workers", "2", "--jwt-secret", SECRET, "--decision-log", "off"]
    with postgres.throwaway_for(request.param, "rolebook_e2e_inv") as name:
        if name:
            flags += ["--database-url", postgres.url(name)]
        srv = live.start(tmp_path / "var", *flags)
        yield srv
        srv.stop()


@pytest.fixture
def user(server):
    return users_of(server.url, SECRET)


def test_invite_read_the_maildir_accept_over_http(server, user):
    alice, bob = user("alice"), user("bob", "bob@example.com")
    account = alice.post("/v1/accounts", {"name": "Live"}).json["id"]
    created = alice.post(f"/v1/accounts/{account}/invitations",
                         {"email": "bob@example.com", "role": "edit", "first_name": "Bob"})
    assert created.status == 201, created.json
    assert "token" not in created.json

    [message] = wait_for_mail(server.data_dir / "mail", "bob@example.com", timeout=30)
    assert accept_link(message).startswith(server.url + "/invitations/accept?token=")
    accepted = bob.post("/v1/invitations/accept", {"token": token_of(message)})
    assert accepted.status == 200, accepted.json
    assert (accepted.json["member"]["role"], accepted.json["member"]["first_name"]) == (
        "edit", "Bob")
    assert bob.get(f"/v1/accounts/{account}").json["role"] == "edit"
    assert bob.post("/v1/invitations/accept", {"token": token_of(message)}).status == 410
    assert server.stop() == 0  # SIGTERM: requests drained, mail sender stopped, clean exit


def test_two_simultaneous_accepts_of_one_token(server, user):
    alice = user("alice")
    account = alice.post("/v1/accounts", {"name": "Race"}).json["id"]
    rounds = 4
    for i in range(rounds):
        email = f"racer{i}@example.com"
        created = alice.post(f"/v1/accounts/{account}/invitations",
                             {"email": email, "role": "read"})
        assert created.status == 201, created.json
        token = token_of(wait_for_mail(server.data_dir / "mail", email, timeout=30)[0])
        # Two sessions of the same invitee (one user id), both clicking the link at once.
        racers = [user(f"racer{i}", email), user(f"racer{i}", email)]
        answers = together(*[partial(racer.post, "/v1/invitations/accept", {"token": token})
                             for racer in racers])
        statuses = [answer.status for answer in answers]
        assert sorted(statuses) in ([200, 409], [200, 410]), (i, statuses)

    members = alice.get(f"/v1/accounts/{account}/members?limit=200").json["items"]
    assert sorted(m["user_id"] for m in members) == ["alice"] + [
        f"racer{i}" for i in range(rounds)]
    assert "Traceback" not in server.output()
