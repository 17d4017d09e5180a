"""Member changes through HTTP apply exactly what the account's policy decides.

Contract: every cell of the Convert and AnyTrack member tables and every
self-service rule (lower or leave yes, raise self no, the only owner neither
leaves nor steps down) holds through PATCH/DELETE /v1/accounts/{id}/members/{user};
a denial is 403 naming `<policy>@<version>#<rule>`, a broken invariant 409;
a refused change alters neither the members nor the audit log, and an
accepted one writes one audit event with before/after, rule and policy version.
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("tests.support.member_rules")

from tests.support.member_rules import CASES, arrange, check  # noqa: E402
from tests.support.membership import members_of  # noqa: E402


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_member_rule(case, user, services):
    check(user, services.store, case)


@pytest.mark.parametrize("policy, lower, higher", [("convert", "read", "edit"),
                                                    ("anytrack", "member_edit", "manager")])
def test_lowering_oneself_cannot_be_undone_by_oneself(policy, lower, higher, user, services):
    account_id = arrange(user, services.store, policy)
    me = "ed" if policy == "convert" else "mg"
    path = f"/v1/accounts/{account_id}/members/{me}"
    assert user(me).patch(path, {"role": lower}).status == 200
    again = user(me).patch(path, {"role": higher})
    assert again.status == 403
    assert again.json["rule"] == f"{policy}@1#nobody-raises-own-role"
    assert members_of(services.store, account_id)[me] == lower


def test_leaving_cannot_be_undone_by_oneself(user, services):
    account_id = arrange(user, services.store, "convert")
    path = f"/v1/accounts/{account_id}/members/ed"
    assert user("ed").delete(path).status == 204
    assert user("ed").patch(path, {"role": "edit"}).status == 404
    assert user("ed").get(f"/v1/accounts/{account_id}/members").status == 404
    assert "ed" not in members_of(services.store, account_id)


def test_two_owners_then_one_leaves_then_the_other_cannot(user, services):
    account_id = arrange(user, services.store, "convert", owners=2)
    base = f"/v1/accounts/{account_id}/members"
    assert user("o2").delete(f"{base}/o2").status == 204
    last = user("o1").delete(f"{base}/o1")
    assert last.status == 409
    assert last.json["type"].endswith("/conflict")
    assert "owner" in last.json["detail"]
    stepping_down = user("o1").patch(f"{base}/o1", {"role": "edit"})
    assert stepping_down.status == 409
    assert members_of(services.store, account_id)["o1"] == "owner"


def test_setting_the_same_role_again_changes_nothing(user, services):
    account_id = arrange(user, services.store, "convert")
    before = services.store.audit.list(account_id, 1000)[0]
    answer = user("o1").patch(f"/v1/accounts/{account_id}/members/ed", {"role": "edit"})
    assert answer.status == 200
    assert answer.json["role"] == "edit"
    assert services.store.audit.list(account_id, 1000)[0] == before


def test_changing_someone_who_is_not_a_member_is_404(user, services):
    account_id = arrange(user, services.store, "convert")
    base = f"/v1/accounts/{account_id}/members"
    for answer in (user("o1").patch(f"{base}/nobody", {"role": "read"}),
                   user("o1").delete(f"{base}/nobody"),
                   user("o1").get(f"{base}/nobody")):
        assert answer.status == 404
        assert answer.headers["content-type"] == "application/problem+json"
