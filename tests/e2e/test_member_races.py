"""Racing member changes through a real server never leave an account without an owner.

Contract: against `rolebook serve --workers 2` over a real socket, on SQLite (one
replica) and on PostgreSQL (three replicas: separate processes, data folders and
ports on one database, each round's two requests through two different ones),
two owners of an account who at the same instant demote each other, or both
leave, end with exactly one owner: one request succeeds and none is a 5xx.
The loser of a demotion race is judged on its role after the winner's change:
it is no longer an owner, so policy refuses it (403, naming its new role); the
loser of a leaving race would remove the last owner (409, naming the owner
minimum). Each scenario is repeated for several rounds (demotions 50 on
PostgreSQL), every round a fresh account; requests start together behind a
threading.Barrier (no sleeps).
"""

from __future__ import annotations

from functools import partial

import pytest

from tests.support.markers import BACKENDS
from tests.support.membership import join, members_of
from tests.support.race import together
from tests.support.served import fleet

REPLICAS = {"sqlite": 1, "postgres": 3}
DEMOTION_ROUNDS = {"sqlite": 10, "postgres": 50}
LEAVING_ROUNDS = 10
LOWEST = {"convert": "read", "anytrack": "member_read"}
OWNER = "owner"


@pytest.fixture(scope="module", params=BACKENDS)
def live(request, tmp_path_factory):
    with fleet(tmp_path_factory.mktemp(f"races-{request.param}"), request.param,
               REPLICAS[request.param]) as running:
        yield running


def two_owners(live, policy: str, tag: str, round_: int) -> tuple[str, object, object]:
    """A fresh account: `a` creates it over HTTP, `b` joins, and `a` makes `b` owner; `a`
    calls replica `round_`, `b` the next one (the same one where there is only one)."""
    store, users = live.store, live.users
    a = users[round_ % len(users)](f"{tag}-a")
    b = users[(round_ + 1) % len(users)](f"{tag}-b")
    created = a.post("/v1/accounts", {"name": tag, "policy": policy})
    assert created.status == 201, created.json
    account_id = created.json["id"]
    join(store, account_id, b.id, LOWEST[policy])
    promoted = a.patch(f"/v1/accounts/{account_id}/members/{b.id}", {"role": OWNER})
    assert promoted.status == 200, promoted.json
    assert members_of(store, account_id) == {a.id: OWNER, b.id: OWNER}
    return account_id, a, b


def assert_one_winner(answers, ok_status: int, lost_status: int, problem: str, says: str):
    """Exactly one call succeeded; the other was refused with `lost_status` saying `says`."""
    statuses = sorted(r.status for r in answers)
    assert all(s < 500 for s in statuses), [r.json for r in answers]
    assert statuses == sorted([ok_status, lost_status]), [r.json for r in answers]
    loser = next(r for r in answers if r.status == lost_status)
    assert loser.json["type"].endswith(problem)
    assert says in loser.json["detail"], loser.json


@pytest.mark.parametrize("policy", ["convert", "anytrack"])
def test_two_owners_demoting_each_other_keep_one_owner(live, policy, request):
    store = live.store
    backend = request.node.callspec.params["live"]
    demoted = 0
    for round_ in range(DEMOTION_ROUNDS[backend]):
        account_id, a, b = two_owners(live, policy, f"demote-{backend}-{policy}-{round_}",
                                      round_)
        base = f"/v1/accounts/{account_id}/members"
        lower = {"role": LOWEST[policy]}
        answers = together(partial(a.patch, f"{base}/{b.id}", lower),
                           partial(b.patch, f"{base}/{a.id}", lower))
        assert_one_winner(answers, 200, 403, "/forbidden", LOWEST[policy])
        demoted += sum(r.status == 200 for r in answers)
        roles = members_of(store, account_id)
        assert list(roles.values()).count(OWNER) == 1, roles
        winner = a if answers[0].status == 200 else b
        assert roles[winner.id] == OWNER
        listed = winner.get(f"{base}?role={OWNER}")
        assert [m["user_id"] for m in listed.json["items"]] == [winner.id]
    assert demoted == DEMOTION_ROUNDS[backend]  # one demotion a round, never two


@pytest.mark.parametrize("policy", ["convert", "anytrack"])
def test_two_owners_leaving_at_once_keep_one_owner(live, policy, request):
    store = live.store
    backend = request.node.callspec.params["live"]
    for round_ in range(LEAVING_ROUNDS):
        account_id, a, b = two_owners(live, policy, f"leave-{backend}-{policy}-{round_}",
                                      round_)
        base = f"/v1/accounts/{account_id}/members"
        answers = together(partial(a.delete, f"{base}/{a.id}"),
                           partial(b.delete, f"{base}/{b.id}"))
        assert_one_winner(answers, 204, 409, "/conflict", "owner")
        stayer = b if answers[0].status == 204 else a
        assert members_of(store, account_id) == {stayer.id: OWNER}
        audit = stayer.get(f"/v1/accounts/{account_id}/audit?limit=1").json["items"][0]
        assert audit["action"] == "member.left"
        assert audit["actor"] != stayer.id
