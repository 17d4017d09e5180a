"""Limits a spammer meets before the mail does: per user, across accounts, in the database.

Protects: one user could create accounts without limit and send each account's full quota
of invitation mail (3 accounts gave 150 mails in 1.9 s, with an attacker-chosen account
name in each subject). Account creation is limited per user, and invitations per inviting
user across all of their accounts; both answer 429 problem+json with Retry-After.
"""

from __future__ import annotations

from dataclasses import replace

import pytest


@pytest.fixture
def config(config):
    return replace(config, accounts_per_user_per_hour=3, invitations_per_user_per_hour=4,
                   invitations_per_hour=50)


def assert_limited(answer) -> None:
    assert answer.status == 429, answer.json
    assert answer.headers["content-type"] == "application/problem+json"
    assert int(answer.headers["retry-after"]) > 0


def test_account_creation_is_limited_per_user(user):
    mallory = user("mallory")
    for i in range(3):
        assert mallory.post("/v1/accounts", {"name": f"Spam {i}"}).status == 201
    assert_limited(mallory.post("/v1/accounts", {"name": "Spam 3"}))
    assert len(mallory.get("/v1/accounts").json["items"]) == 3
    assert user("zoe").post("/v1/accounts", {"name": "Mine"}).status == 201


def test_invitations_are_limited_per_user_across_accounts(user, services):
    mallory = user("mallory")
    accounts = [mallory.post("/v1/accounts", {"name": f"Spam {i}"}).json["id"]
                for i in range(2)]
    for i in range(4):
        sent = mallory.post(f"/v1/accounts/{accounts[i % 2]}/invitations",
                            {"email": f"victim{i}@example.com", "role": "read"})
        assert sent.status == 201, sent.json
    assert_limited(mallory.post(f"/v1/accounts/{accounts[0]}/invitations",
                                {"email": "victim9@example.com", "role": "read"}))
    stored = [services.store.invitations.list(a, 100)[0] for a in accounts]
    assert sum(map(len, stored)) == 4
