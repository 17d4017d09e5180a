"""Invitations across three real replicas (separate processes, data folders, ports and
Maildirs) on one throw-away PostgreSQL database.

Protects: an account's invitation rate limit holds when its invitations arrive at once
spread round-robin over the replicas (exactly `limit` stored, every other answer a 429
problem+json with Retry-After); one invitation token accepted through two replicas at
the same moment makes exactly one member (20 rounds); and the outbox, which every
replica's mail senders poll, delivers each of many invitations created through all
three exactly once in total: each replica writes to its own Maildir only the messages
its own workers claimed, and no Message-ID appears twice across the three.
"""

from __future__ import annotations

from email.message import EmailMessage
from functools import partial

import pytest

from tests.support import processes
from tests.support.mail import messages_to, read_maildir, token_of, wait_for
from tests.support.race import together
from tests.support.served import fleet

pytestmark = pytest.mark.postgres
REPLICAS = 3
LIMIT = 20  # --invitations-per-hour: per account
OVER_LIMIT = 12
ACCEPT_ROUNDS = 20
MAIL_ACCOUNTS = 3  # LIMIT invitations each


@pytest.fixture
def replicas(tmp_path):
    with fleet(tmp_path, "postgres", REPLICAS, 2, "--invitations-per-hour",
               str(LIMIT)) as running:
        yield running


def invite(user, account: str, email: str):
    return user.post(f"/v1/accounts/{account}/invitations", {"email": email, "role": "read"})


def delivered(replicas, email: str) -> list[EmailMessage]:
    """Messages to `email` in any replica's Maildir: the replica that claimed it sent it."""
    return [m for s in replicas.servers for m in messages_to(s.data_dir / "mail", email)]


def test_the_rate_limit_holds_with_invitations_spread_over_the_replicas(replicas):
    owners = [make("limited-owner") for make in replicas.users]  # one user, three replicas
    account = owners[0].post("/v1/accounts", {"name": "Limited"}).json["id"]
    emails = [f"limited{i}@example.com" for i in range(LIMIT + OVER_LIMIT)]
    answers = together(*(partial(invite, owners[i % REPLICAS], account, email)
                         for i, email in enumerate(emails)))

    statuses = [a.status for a in answers]
    assert sorted(statuses) == [201] * LIMIT + [429] * OVER_LIMIT, statuses
    for refused in (a for a in answers if a.status == 429):
        assert refused.headers["Content-Type"].startswith("application/problem+json")
        assert refused.json["status"] == 429 and refused.json["type"].endswith("/rate-limited")
        assert int(refused.headers["Retry-After"]) >= 1
    stored = owners[1].get(f"/v1/accounts/{account}/invitations?limit=100").json["items"]
    created = {email for email, a in zip(emails, answers, strict=True) if a.status == 201}
    assert {i["email"] for i in stored} == created and len(stored) == LIMIT


def test_one_token_accepted_through_two_replicas_at_once_makes_one_member(replicas):
    owner = replicas.users[0]("race-owner")
    account = owner.post("/v1/accounts", {"name": "Race"}).json["id"]
    for round_ in range(ACCEPT_ROUNDS):
        email = f"racer{round_}@example.com"
        assert invite(replicas.users[round_ % REPLICAS]("race-owner"), account,
                      email).status == 201
        [message] = wait_for(lambda email=email: delivered(replicas, email), timeout=30,
                             what=f"the invitation to {email}")
        token = token_of(message)
        # Two sessions of the same invitee, each through its own replica, click at once.
        racers = [replicas.users[(round_ + n) % REPLICAS](f"racer{round_}", email)
                  for n in (0, 1)]
        answers = together(*(partial(r.post, "/v1/invitations/accept", {"token": token})
                             for r in racers))
        assert sorted(a.status for a in answers) in ([200, 409], [200, 410]), \
            (round_, [a.json for a in answers])
    members = owner.get(f"/v1/accounts/{account}/members?limit=100").json["items"]
    assert sorted(m["user_id"] for m in members) == sorted(
        ["race-owner", *(f"racer{n}" for n in range(ACCEPT_ROUNDS))])


def outbox_row(message: EmailMessage) -> int:
    """The outbox row a message came from: its Message-ID is <rolebook.INVITATION.ROW@...>."""
    return int(str(message["Message-ID"]).strip("<>").split("@")[0].rsplit(".", 1)[1])


def test_every_invitation_is_mailed_exactly_once_by_the_replica_that_claimed_it(replicas):
    owners = [make("mail-owner") for make in replicas.users]
    accounts = [owners[0].post("/v1/accounts", {"name": f"Mail {n}"}).json["id"]
                for n in range(MAIL_ACCOUNTS)]
    emails = [f"invitee{i}@example.com" for i in range(MAIL_ACCOUNTS * LIMIT)]
    answers = together(*(partial(invite, owners[i % REPLICAS], accounts[i // LIMIT], email)
                         for i, email in enumerate(emails)))
    assert [a.status for a in answers] == [201] * len(emails)

    def all_sent() -> bool:
        return all(i["delivery_status"] == "sent" for account in accounts
                   for i in replicas.store.invitations.list(account, 100)[0])
    wait_for(all_sent, timeout=60, what="every invitation marked sent")
    workers = [processes.children(s.process.pid) for s in replicas.servers]
    for server in replicas.servers:  # SIGTERM: each sender finishes the message in hand
        assert server.stop() == 0

    boxes = [read_maildir(s.data_dir / "mail") for s in replicas.servers]
    every = [m for box in boxes for m in box]
    assert sorted(str(m["To"]) for m in every) == sorted(emails)
    assert len({str(m["Message-ID"]) for m in every}) == len(emails)
    for box, pids in zip(boxes, workers, strict=True):
        assert box, "a replica whose senders delivered nothing"
        for message in box:
            claimer = replicas.store.outbox.get(outbox_row(message))["claimed_by"]
            assert int(claimer.split(":")[-2]) in pids, (claimer, pids)
    print(f"\n{len(emails)} invitations through {REPLICAS} replicas: "
          f"{[len(box) for box in boxes]} messages in their Maildirs")
