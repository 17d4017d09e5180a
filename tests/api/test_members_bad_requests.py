"""Bad requests to the member and audit routes change nothing.

Contract: malformed JSON, a body that is not the MemberUpdate schema, a role the
account's policy does not define, a body over `max_body_bytes`, a body that is
not JSON, a bad `limit` or a cursor the list did not hand out are each answered
with problem+json (400, 413 or 415) naming the field where there is one, and
the account's members and audit trail are exactly as before (full listings
compared). Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.support.membership import join, snapshot

MAX_BODY = 256


@pytest.fixture
def config(config):
    return replace(config, max_body_bytes=MAX_BODY)


@pytest.fixture
def account(user, services):
    created = user("o1").post("/v1/accounts", {"name": "Acme", "policy": "convert"})
    account_id = created.json["id"]
    join(services.store, account_id, "ed", "edit")
    join(services.store, account_id, "rd", "read")
    return account_id


def raw(client, caller, method: str, path: str, body: bytes,
        content_type: str = "application/json"):
    path, _, query = path.partition("?")
    return client.simulate_request(method, path, query_string=query or None, body=body,
                                   headers={"Authorization": f"Bearer {caller.token}",
                                            "Content-Type": content_type})


def assert_problem(result, status: int, field: str | None = None) -> None:
    assert result.status_code == status, result.text
    assert result.headers["content-type"] == "application/problem+json"
    problem = result.json
    assert problem["status"] == status
    assert problem["type"].startswith("https://")
    assert problem["title"] and problem["detail"]
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]], problem


PATCH_BODIES = [
    pytest.param(b"{", 400, None, id="malformed-json"),
    pytest.param(b'{"role": "edit",}', 400, None, id="trailing-comma"),
    pytest.param(b"", 400, None, id="empty"),
    pytest.param(b"[]", 400, None, id="not-an-object"),
    pytest.param(b"{}", 400, "role", id="no-role"),
    pytest.param(b'{"role": 2}', 400, "role", id="role-not-a-string"),
    pytest.param(b'{"role": ""}', 400, "role", id="role-empty"),
    pytest.param(b'{"role": "edit", "admin": true}', 400, "admin", id="unknown-field"),
    pytest.param(b'{"role": "superuser"}', 400, "role", id="unknown-role"),
    pytest.param(b'{"role": "manager"}', 400, "role", id="role-of-another-policy"),
    pytest.param(b'{"role": "OWNER"}', 400, "role", id="role-wrong-case"),
    pytest.param(b'{"role": "read", "pad": "' + b"x" * MAX_BODY + b'"}', 413, None,
                 id="over-max-body-bytes"),
]


@pytest.mark.parametrize("body, status, field", PATCH_BODIES)
@pytest.mark.parametrize("target", ["ed", "o1"])
def test_bad_patch_changes_nothing(body, status, field, target, account, client, user,
                                   services):
    before = snapshot(services.store, account)
    result = raw(client, user("o1"), "PATCH", f"/v1/accounts/{account}/members/{target}", body)
    assert_problem(result, status, field)
    assert snapshot(services.store, account) == before


def test_a_body_that_is_not_json_is_415_and_changes_nothing(account, client, user, services):
    before = snapshot(services.store, account)
    result = raw(client, user("o1"), "PATCH", f"/v1/accounts/{account}/members/ed",
                 b"role=read", content_type="application/x-www-form-urlencoded")
    assert_problem(result, 415)
    assert snapshot(services.store, account) == before


def cursor_of(user, path: str) -> str:
    page = user("o1").get(f"{path}?limit=1")
    assert page.json["next_cursor"]
    return page.json["next_cursor"]


@pytest.mark.parametrize("route", ["members", "audit"])
@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=-1", "limit"),
    ("limit=abc", "limit"), ("limit=1.5", "limit"), ("limit=", "limit"),
    ("cursor=not-a-cursor", "cursor"), ("cursor=%00%ff", "cursor"),
    ("cursor=" + "A" * 600, "cursor"), ("cursor=WyJvdGhlciIsMV0", "cursor"),
])
def test_bad_page_parameters_are_400(route, query, field, account, client, user, services):
    before = snapshot(services.store, account)
    result = raw(client, user("o1"), "GET", f"/v1/accounts/{account}/{route}?{query}", b"")
    assert_problem(result, 400, field)
    assert snapshot(services.store, account) == before


def test_a_cursor_of_the_other_list_is_400(account, client, user):
    members = f"/v1/accounts/{account}/members"
    audit = f"/v1/accounts/{account}/audit"
    from_audit, from_members = cursor_of(user, audit), cursor_of(user, members)
    assert_problem(raw(client, user("o1"), "GET", f"{members}?cursor={from_audit}", b""),
                   400, "cursor")
    assert_problem(raw(client, user("o1"), "GET", f"{audit}?cursor={from_members}", b""),
                   400, "cursor")


def test_the_same_requests_well_formed_succeed(account, user, services):
    """The control: the routes above do work, so their refusals are about the input."""
    owner = user("o1")
    assert owner.get(f"/v1/accounts/{account}/members?limit=200").status == 200
    assert owner.get(f"/v1/accounts/{account}/audit?limit=1").status == 200
    changed = owner.patch(f"/v1/accounts/{account}/members/ed", {"role": "read"})
    assert changed.status == 200
    assert snapshot(services.store, account)["members"][0]["role"] == "read"
