"""Listing and viewing members: GET /v1/accounts/{id}/members[/{user_id}].

Contract: the list is paginated (`limit` 1-200, default 50; opaque `next_cursor`,
null on the last page), sorted stably by user id, with no member missed or
repeated across pages; `role` filters by a role of the account's policy, and a
role that policy does not define is a 400 naming the field; every member may
list and view (`member.list`, `member.view`); one member is the Member schema.
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

from tests.support.membership import join


@pytest.fixture
def account(user, services):
    """o1's Convert account with eight more members of mixed roles."""
    created = user("o1").post("/v1/accounts", {"name": "Acme", "policy": "convert"})
    account_id = created.json["id"]
    for i, role in enumerate(["read", "edit", "read", "owner", "read", "edit", "read", "read"]):
        join(services.store, account_id, f"u{8 - i}", role)
    return account_id


def walk(caller, path: str, limit: int) -> tuple[list[dict], int]:
    """Follow next_cursor to the end; (items, pages)."""
    items, pages, cursor = [], 0, None
    while True:
        query = f"limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = caller.get(f"{path}{'&' if '?' in path else '?'}{query}")
        assert page.status == 200, page.json
        assert len(page.json["items"]) <= limit
        items += page.json["items"]
        pages += 1
        cursor = page.json["next_cursor"]
        if cursor is None:
            return items, pages
        assert pages < 50, "the cursor never ends"


def test_pages_cover_every_member_once_in_user_id_order(account, user, services):
    path = f"/v1/accounts/{account}/members"
    items, pages = walk(user("u1"), path, 3)
    ids = [m["user_id"] for m in items]
    assert ids == sorted(ids)
    assert sorted(ids) == sorted(["o1"] + [f"u{i}" for i in range(1, 9)])
    assert pages == 3
    whole = user("u1").get(path)
    assert whole.json["next_cursor"] is None
    assert whole.json["items"] == items


def test_default_limit_is_50(user, services):
    created = user("o1").post("/v1/accounts", {"name": "Big", "policy": "convert"})
    account_id = created.json["id"]
    for i in range(50):
        join(services.store, account_id, f"m{i:03d}", "read")
    page = user("o1").get(f"/v1/accounts/{account_id}/members")
    assert len(page.json["items"]) == 50
    assert page.json["next_cursor"]
    rest = user("o1").get(f"/v1/accounts/{account_id}/members?cursor={page.json['next_cursor']}")
    assert [m["user_id"] for m in rest.json["items"]] == ["o1"]
    assert rest.json["next_cursor"] is None


def test_filter_by_role_pages_too(account, user):
    items, _ = walk(user("u2"), f"/v1/accounts/{account}/members?role=read", 2)
    assert [m["user_id"] for m in items] == ["u1", "u2", "u4", "u6", "u8"]
    assert {m["role"] for m in items} == {"read"}
    owners = user("u2").get(f"/v1/accounts/{account}/members?role=owner")
    assert [m["user_id"] for m in owners.json["items"]] == ["o1", "u5"]


@pytest.mark.parametrize("role", ["manager", "admin", "Owner", ""])
def test_filter_by_a_role_the_policy_does_not_define_is_400(account, user, role):
    answer = user("o1").get(f"/v1/accounts/{account}/members?role={role}")
    assert answer.status == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in answer.json["errors"]] == ["role"]


def test_anytrack_roles_filter_in_an_anytrack_account(user, services):
    created = user("o1").post("/v1/accounts", {"name": "Track", "policy": "anytrack"})
    account_id = created.json["id"]
    join(services.store, account_id, "mg", "manager")
    join(services.store, account_id, "mr", "member_read")
    lowest = user("mr")
    assert lowest.get(f"/v1/accounts/{account_id}/members?role=manager").json["items"][0][
        "user_id"] == "mg"
    assert lowest.get(f"/v1/accounts/{account_id}/members?role=edit").status == 400


@pytest.mark.parametrize("viewer", ["u1", "u2", "o1"])
def test_every_member_lists_and_views(account, user, viewer):
    caller = user(viewer)
    assert caller.get(f"/v1/accounts/{account}/members").status == 200
    one = caller.get(f"/v1/accounts/{account}/members/u3")
    assert one.status == 200
    assert one.json["user_id"] == "u3"
    assert one.json["email"] == "u3@example.com"
    assert one.json["role"] == "edit"
    assert one.json["joined_at"].endswith("Z")
    assert set(one.json) >= {"user_id", "email", "first_name", "last_name", "role",
                             "joined_at"}


def test_viewing_someone_who_is_not_a_member_is_404(account, user):
    answer = user("u1").get(f"/v1/accounts/{account}/members/stranger")
    assert answer.status == 404
    assert answer.json["type"].endswith("/not-found")


def test_list_reflects_changes_at_once(account, user):
    owner = user("o1")
    assert owner.patch(f"/v1/accounts/{account}/members/u1", {"role": "edit"}).status == 200
    assert owner.delete(f"/v1/accounts/{account}/members/u2").status == 204
    items = owner.get(f"/v1/accounts/{account}/members").json["items"]
    roles = {m["user_id"]: m["role"] for m in items}
    assert roles["u1"] == "edit"
    assert "u2" not in roles
