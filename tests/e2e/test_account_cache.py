"""Every worker of a live server sees a member change at once, with the account cache on.

Contract: against `rolebook serve --workers 2 --account-cache on` over a real
socket, on SQLite and PostgreSQL, a member's `/v1/check` answers (which come
from the account cache once asked) follow each change of that member's role
or membership in the very next request, whichever worker made the change and
whichever answers; the answers come from both workers (decision ids carry a
per-process prefix).
"""

from __future__ import annotations

import pytest

from tests.support.markers import BACKENDS
from tests.support.membership import join
from tests.support.served import served

ASKS = 24  # new connections per step; SO_REUSEPORT spreads them over both workers


@pytest.fixture(scope="module", params=BACKENDS)
def live(request, tmp_path_factory):
    with served(tmp_path_factory.mktemp(f"cache-{request.param}"), request.param, 2,
                "--account-cache", "on") as running:
        yield running


def effects(user, account_id: str) -> tuple[set[str], set[str]]:
    """What `ASKS` checks of `object update` by `user` answered, and which processes answered."""
    answers, processes = set(), set()
    body = {"principal": {"id": user.id}, "account_id": account_id,
            "resources": [{"kind": "object", "id": "42", "actions": ["update"]}]}
    for _ in range(ASKS):
        result = user.post("/v1/check", body)
        if result.status == 404:
            answers.add("not a member")
            continue
        assert result.status == 200, result.json
        answers.add(result.json["results"][0]["actions"]["update"]["effect"])
        processes.add(result.json["decision_id"][:12])
    return answers, processes


def test_role_changes_reach_every_worker_at_the_next_request(live):
    _, store, make_user = live
    alice, bob = make_user("cache-alice"), make_user("cache-bob")
    account = alice.post("/v1/accounts", {"name": "cached", "policy": "convert"}).json["id"]
    members = f"/v1/accounts/{account}/members/{bob.id}"

    assert effects(bob, account)[0] == {"not a member"}
    join(store, account, bob.id, "read")                  # written by another process
    seen, processes = effects(bob, account)
    assert seen == {"deny"}

    assert alice.patch(members, {"role": "edit"}).status == 200
    seen, more = effects(bob, account)
    assert seen == {"allow"}
    processes |= more

    assert alice.patch(members, {"role": "read"}).status == 200
    assert effects(bob, account)[0] == {"deny"}

    assert alice.delete(members).status == 204
    assert effects(bob, account)[0] == {"not a member"}
    assert len(processes) == 2, processes
