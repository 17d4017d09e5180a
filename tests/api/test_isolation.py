"""A member of one account can read or change nothing of another: always 404.

Contract: for EVERY account-scoped route of openapi.yaml (each path under
/v1/accounts/{account_id}, each method), a caller who is a member (even the
owner) of their own account gets 404 problem+json when aiming at another
account, with real ids of that account in every path parameter and a valid
body; and the other account is left exactly as it was. The same request on the
caller's own account is not a 404, so the route and its ids are real.
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re

import pytest

from rolebook.api.contract import openapi
from tests.support.membership import invite, join, snapshot

PREFIX = "/v1/accounts/{account_id}"
METHODS = ("get", "put", "post", "patch", "delete")

# A valid body for each request schema an account-scoped route takes.
BODIES = {
    "MemberUpdate": {"role": "read"},
    "InvitationCreate": {"email": "newcomer@example.com", "role": "read"},
}


def account_routes() -> list[tuple[str, str]]:
    paths = openapi()["paths"]
    return [(path, method) for path, item in paths.items() if path.startswith(PREFIX)
            for method in METHODS if method in item]


def body_for(path: str, method: str):
    request_body = openapi()["paths"][path][method].get("requestBody")
    if request_body is None:
        return None
    ref = request_body["content"]["application/json"]["schema"]["$ref"]
    name = ref.rsplit("/", 1)[-1]
    assert name in BODIES, f"add a valid {name} body to BODIES for {method.upper()} {path}"
    return BODIES[name]


def test_every_account_route_is_covered():
    routes = account_routes()
    assert len(routes) >= 12
    assert ("/v1/accounts/{account_id}/members/{user_id}", "patch") in routes
    assert ("/v1/accounts/{account_id}/audit", "get") in routes


def arrange(user, store, owner: str) -> dict:
    """An account of `owner` with a second member and a pending invitation: its real ids."""
    created = user(owner).post("/v1/accounts", {"name": f"{owner}'s", "policy": "convert"})
    assert created.status == 201
    account_id = created.json["id"]
    join(store, account_id, f"{owner}-mate", "read")
    invitation, _ = invite(store, account_id, f"{owner}-guest@example.com", "read")
    return {"account_id": account_id, "user_id": f"{owner}-mate",
            "invitation_id": invitation["id"]}


def fill(path: str, ids: dict) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        assert name in ids, f"no real id for path parameter {name!r} of {path}"
        return ids[name]
    return re.sub(r"{(\w+)}", value, path)


@pytest.mark.parametrize("path, method", account_routes(),
                         ids=[f"{m.upper()} {p}" for p, m in account_routes()])
def test_another_account_is_404_and_untouched(path, method, user, services):
    store = services.store
    theirs = arrange(user, store, "victim")
    mine = arrange(user, store, "intruder")
    intruder = user("intruder")
    body = body_for(path, method)

    control = intruder.call(method.upper(), fill(path, mine), body)
    assert control.status not in (404, 405), (
        f"control request on the caller's own account failed: {control.json}")

    before = snapshot(store, theirs["account_id"])
    answer = intruder.call(method.upper(), fill(path, theirs), body)
    assert answer.status == 404, answer.json
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json["status"] == 404
    assert theirs["account_id"] not in str(answer.json.get("errors", ""))
    assert snapshot(store, theirs["account_id"]) == before
    # A made-up account id gets the same answer: nothing tells a real id from a made-up one.
    made_up = {**theirs, "account_id": "acc_" + "0" * 16}
    invented = intruder.call(method.upper(), fill(path, made_up), body)
    assert invented.status == 404
    assert invented.json == {**answer.json, "detail": answer.json["detail"].replace(
        theirs["account_id"], made_up["account_id"])}


@pytest.mark.parametrize("trusted", [False, True])
def test_check_answers_alike_for_real_and_made_up_accounts(user, trusted):
    theirs = user("victim").post("/v1/accounts", {"name": "Victim"}).json["id"]
    caller = user("svc", scope="check") if trusted else user("intruder")
    answers = []
    for account_id in (theirs, "acc_" + "0" * 16):
        body = {"principal": {"id": "intruder"}, "account_id": account_id,
                "resources": [{"kind": "account", "actions": ["view"]}]}
        answers.append(caller.post("/v1/check", body))
    real, invented = answers
    if trusted:  # a service may ask about anyone: a non-member is simply denied
        assert real.status == 200 and invented.status == 404
        return
    assert real.status == invented.status == 404
    assert real.json["detail"].replace(theirs, "acc_" + "0" * 16) == invented.json["detail"]


def test_a_former_member_sees_nothing(user, services):
    theirs = arrange(user, services.store, "victim")
    base = f"/v1/accounts/{theirs['account_id']}"
    mate = user(theirs["user_id"])
    assert mate.get(f"{base}/members").status == 200
    assert mate.delete(f"{base}/members/{theirs['user_id']}").status == 204
    for answer in (mate.get(base), mate.get(f"{base}/members"), mate.get(f"{base}/audit"),
                   mate.patch(f"{base}/members/victim", {"role": "read"})):
        assert answer.status == 404
