"""Accounts, policies and the service routes.

Protects: the creator becomes the first owner under the chosen (or default)
policy; unknown policies are 400; non-members get 404 (no enumeration);
delete follows the policy; permissions mirror the compiled matrix; reload
swaps atomically and a broken file leaves the running set serving; readiness
and metrics report what they claim; oversized bodies are 413.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

import falcon.testing
import pytest

from rolebook.api.app import build_services, create_app
from tests.support.client import User, in_process
from tests.support.markers import sqlite_only
from tests.support.policies import REPO


def test_create_and_read_account(user):
    alice = user("alice")
    created = alice.post("/v1/accounts", {"name": "Acme"})
    assert created.status == 201
    account = created.json
    assert account["role"] == "owner" and account["policy"] == "convert"
    assert account["policy_version"] is None and account["effective_policy_version"] == 1
    assert created.headers["location"] == f"/v1/accounts/{account['id']}"
    assert alice.get(f"/v1/accounts/{account['id']}").json["name"] == "Acme"
    listed = alice.get("/v1/accounts").json
    assert [a["id"] for a in listed["items"]] == [account["id"]]


def test_account_under_another_policy_and_pinned_version(user):
    alice = user("alice")
    account = alice.post("/v1/accounts", {"name": "T", "policy": "anytrack",
                                          "policy_version": 1}).json
    assert (account["policy"], account["policy_version"], account["role"]) == \
        ("anytrack", 1, "owner")


@pytest.mark.parametrize("body, field", [({"name": "X", "policy": "nope"}, "policy"),
                                         ({"name": "X", "policy_version": 7}, "policy_version"),
                                         ({"name": "   "}, "name"), ({}, "name"),
                                         ({"name": "X", "extra": 1}, "extra")])
def test_bad_account_bodies(user, body, field):
    result = user("alice").post("/v1/accounts", body)
    assert result.status == 400
    assert field in [e["field"] for e in result.json["errors"]]
    assert user("alice").get("/v1/accounts").json["items"] == []


def test_pagination_of_accounts(user):
    alice = user("alice")
    ids = sorted(alice.post("/v1/accounts", {"name": f"A{i}"}).json["id"] for i in range(5))
    seen, cursor = [], None
    while True:
        page = alice.get("/v1/accounts?limit=2" + (f"&cursor={cursor}" if cursor else "")).json
        assert len(page["items"]) <= 2
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids
    assert alice.get("/v1/accounts?cursor=garbage!").status == 400
    assert alice.get("/v1/accounts?limit=0").status == 400
    assert alice.get("/v1/accounts?limit=201").status == 400


def test_non_member_gets_404_everywhere_on_accounts(user):
    account = user("alice").post("/v1/accounts", {"name": "Acme"}).json
    mallory = user("mallory")
    for path in (f"/v1/accounts/{account['id']}", f"/v1/accounts/{account['id']}/permissions"):
        assert mallory.get(path).status == 404
    assert mallory.delete(f"/v1/accounts/{account['id']}").status == 404
    assert mallory.get("/v1/accounts/acc_nope").status == 404
    assert user("alice").get(f"/v1/accounts/{account['id']}").status == 200


def test_owner_deletes_account_and_it_is_audited_away(user):
    alice = user("alice")
    account = alice.post("/v1/accounts", {"name": "Acme"}).json
    assert alice.delete(f"/v1/accounts/{account['id']}").status == 204
    assert alice.get(f"/v1/accounts/{account['id']}").status == 404
    assert alice.get("/v1/accounts").json["items"] == []


def test_permissions_mirror_the_policy(user):
    alice = user("alice")
    account = alice.post("/v1/accounts", {"name": "T", "policy": "anytrack"}).json
    perms = alice.get(f"/v1/accounts/{account['id']}/permissions").json
    assert perms["role"] == "owner" and perms["policy"] == "anytrack"
    assert perms["permissions"]["billing"] == {"view": "allow", "update": "allow"}
    assert perms["permissions"]["member"]["update_role"] == "conditional"
    assert set(perms["permissions"]) >= {"account", "member", "invitation", "billing", "audit",
                                          "property", "integration", "dataset", "report"}


@sqlite_only
def test_policy_listing_and_version(user):
    alice = user("alice")
    listed = alice.get("/v1/policies").json
    assert listed["default_policy"] == "convert"
    assert {(p["name"], p["version"], p["active"]) for p in listed["policies"]} == \
        {("convert", 1, True), ("anytrack", 1, True)}
    detail = alice.get("/v1/policies/convert/versions/1").json
    assert detail["roles"] == ["read", "edit", "owner"]
    assert detail["source"] == (REPO / "policies/convert/v1.yaml").read_text()
    rows = {(r["kind"], r["action"]): r["cells"] for r in detail["matrix"]["rows"]}
    assert rows[("billing", "view")]["owner"]["effect"] == "allow"
    assert rows[("billing", "view")]["edit"]["effect"] == "deny"
    assert alice.get("/v1/policies/convert/versions/9").status == 404
    assert alice.get("/v1/policies/nope/versions/1").status == 404


@pytest.fixture
def own_policies(tmp_path, config):
    """A private copy of the policy directory that a test may break."""
    target = tmp_path / "policies"
    shutil.copytree(REPO / "policies", target)
    return target


@sqlite_only
def test_reload_swaps_and_survives_a_broken_file(own_policies, config):
    cfg = replace(config, policy_dir=str(own_policies))
    services = build_services(cfg)
    client = falcon.testing.TestClient(create_app(cfg, services))
    transport = in_process(client)
    admin = User(transport, cfg, "root", scope="admin")
    plain = User(transport, cfg, "bob")
    assert plain.post("/v1/policies/reload").status == 403

    v2 = (own_policies / "convert/v1.yaml").read_text().replace("version: 1", "version: 2")
    (own_policies / "convert/v2.yaml").write_text(v2)
    reloaded = admin.post("/v1/policies/reload")
    assert reloaded.status == 200
    active = {(p["name"], p["version"]) for p in reloaded.json["policies"] if p["active"]}
    assert ("convert", 2) in active
    # The reload is accountable: who asked, and the digests before and after it.
    assert plain.get("/v1/policies/events").status == 403
    [event] = admin.get("/v1/policies/events").json["items"]
    assert (event["action"], event["actor"]) == ("policy.reloaded", "root")
    assert event["after"] == {"snapshot_digest": reloaded.json["snapshot_digest"]}
    assert event["before"]["snapshot_digest"] not in (None, event["after"]["snapshot_digest"])

    broken = v2.replace("version: 2", "version: 3").replace("min_role: owner\n",
                                                            "min_role: sovereign\n", 1)
    (own_policies / "convert/v3.yaml").write_text(broken)
    failed = admin.post("/v1/policies/reload")
    assert failed.status == 422
    problem = failed.json["errors"][0]
    assert problem["file"].endswith("convert/v3.yaml") and problem["line"] > 1
    assert "sovereign" in problem["message"]
    still = plain.get("/v1/policies").json
    assert ("convert", 3) not in {(p["name"], p["version"]) for p in still["policies"]}
    assert len(admin.get("/v1/policies/events").json["items"]) == 1  # nothing was reloaded
    ready = client.simulate_get("/readyz").json
    assert ready["status"] == "ready" and "reload failed" in ready["warnings"][0]
    metrics = client.simulate_get("/metrics").text
    assert 'rolebook_policy_reloads_total{outcome="failure"} 1.0' in metrics
    assert "rolebook_policy_last_reload_success 0.0" in metrics  # the old set still serves
    services.decisions.close()


@sqlite_only
def test_readyz_and_metrics(client, user):
    ready = client.simulate_get("/readyz").json
    assert ready["status"] == "ready"
    assert {p["name"] for p in ready["policies"]} == {"convert", "anytrack"}
    user("svc", scope="check").post("/v1/check", {
        "principal": {"id": "x", "role": "read"},
        "resources": [{"kind": "report", "actions": ["view"]}]})
    text = client.simulate_get("/metrics").text
    assert 'rolebook_decisions_total{effect="allow"} 1.0' in text
    assert 'route="/v1/check",status="200"' in text
    assert "rolebook_policy_evaluation_seconds_bucket" in text
    assert "rolebook_check_resources_count 1.0" in text


@sqlite_only
def test_body_over_the_limit_is_413(config, services):
    small = replace(config, max_body_bytes=200)
    client = falcon.testing.TestClient(create_app(small, services))
    alice = User(in_process(client), small, "alice")
    result = alice.post("/v1/accounts", {"name": "x" * 500})
    assert result.status == 413
    assert result.json["type"].endswith("/payload-too-large")
    assert alice.get("/v1/accounts").json["items"] == []


@sqlite_only
def test_malformed_json_and_wrong_media_type(client, config):
    token = User(in_process(client), config, "alice").token
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    bad = client.simulate_post("/v1/accounts", body=b"{not json", headers=headers)
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
    form = client.simulate_post("/v1/accounts", body=b"name=x",
                                headers={**headers, "Content-Type": "text/plain"})
    assert form.status_code == 415
