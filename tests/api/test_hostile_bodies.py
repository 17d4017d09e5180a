"""Bodies built to make a refusal expensive are refused cheaply, with a short answer.

Protects (found by a hostile client): a 1 MB `/v1/check` body of 500,000 wrong items once
took a worker 17-35 s and answered 3 MB, because every schema error was collected, sorted
and quoted the whole value; arrays nested ~1,000 deep in `attr`, `email` or `role` made the
error text raise RecursionError (a 500). Each case here must be a 400 problem+json of a few
kilobytes at most, with at most 20 errors of short messages.
"""

from __future__ import annotations

import json

import pytest

from tests.support.markers import sqlite_only

pytestmark = sqlite_only

DEEP = "[" * 1000 + "]" * 1000


@pytest.fixture
def owner(user):
    return user("alice")


@pytest.fixture
def account(owner):
    result = owner.post("/v1/accounts", {"name": "Acme"})
    assert result.status == 201
    return result.json


def compact(document) -> bytes:
    raw = json.dumps(document, separators=(",", ":")).encode()
    assert 900_000 < len(raw) <= 1_048_576  # about the body limit, not over it
    return raw


def send(client, who, method: str, path: str, raw: bytes):
    return client.simulate_request(method, path, body=raw, headers={
        "Authorization": f"Bearer {who.token}", "Content-Type": "application/json"})


def assert_short_refusal(result, field: str) -> dict:
    assert result.status_code == 400, result.text
    assert result.headers["content-type"].startswith("application/problem+json")
    assert len(result.content) < 8_000, len(result.content)
    problem = result.json
    assert 1 <= len(problem["errors"]) <= 20
    assert all(len(error["message"]) <= 200 for error in problem["errors"])
    assert problem["errors"][0]["field"] == field
    return problem


def test_half_a_million_wrong_items(client, owner):
    raw = compact({"principal": {"id": "alice"}, "resources": [1] * 500_000})
    problem = assert_short_refusal(send(client, owner, "POST", "/v1/check", raw), "resources")
    assert "too long" in problem["errors"][0]["message"]


def test_many_well_formed_resources_are_refused_by_their_number(client, owner):
    resources = [{"kind": "account", "actions": ["read"]}] * 25_000
    raw = compact({"principal": {"id": "alice"}, "resources": resources})
    problem = assert_short_refusal(send(client, owner, "POST", "/v1/check", raw), "resources")
    assert len(problem["errors"]) == 1  # the items are checked only up to maxItems


def test_eighty_thousand_unexpected_keys(client, owner):
    principal = {"id": "alice", **{f"k{i:06}": 1 for i in range(80_000)}}
    raw = compact({"principal": principal, "resources": [
        {"kind": "account", "actions": ["read"]}]})
    problem = assert_short_refusal(send(client, owner, "POST", "/v1/check", raw),
                                   "principal.k000000")
    assert "and 79995 more were unexpected" in problem["errors"][0]["message"]


@pytest.mark.parametrize("where", ["attr", "nul"])
def test_a_thousand_levels_deep_in_attr(client, owner, where):
    value = DEEP if where == "attr" else "[" * 1000 + '"\\u0000"' + "]" * 1000
    raw = ('{"principal":{"id":"alice"},"resources":[{"kind":"account","actions":["read"],'
           f'"attr":{{"x":{value}}}}}]}}').encode()
    result = send(client, owner, "POST", "/v1/check", raw)
    assert result.status_code == 400, result.text
    assert len(result.content) < 8_000


def test_a_thousand_levels_deep_in_email_and_role(client, owner, account):
    path = f"/v1/accounts/{account['id']}"
    invite = f'{{"email":{DEEP},"role":"edit"}}'.encode()
    assert_short_refusal(send(client, owner, "POST", f"{path}/invitations", invite), "(body)")
    role = f'{{"role":{DEEP}}}'.encode()
    result = send(client, owner, "PATCH", f"{path}/members/alice", role)
    assert_short_refusal(result, "(body)")

