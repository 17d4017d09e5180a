"""An account pinned to a version this replica does not have: every route, /v1/check included,
answers 503 naming the policy version (the caller did nothing wrong), never 400."""

from __future__ import annotations

import shutil

import falcon.testing

from rolebook.api.app import build_services, create_app
from rolebook.api.config import Config
from tests.support.client import User, in_process
from tests.support.policies import REPO


def test_a_pinned_version_this_replica_lacks_is_503_everywhere(tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    v1 = policies / "convert" / "v1.yaml"
    v2 = policies / "convert" / "v2.yaml"
    v2.write_text(v1.read_text().replace("version: 1\n", "version: 2\n", 1))
    config = Config(data_dir=str(tmp_path / "var"), policy_dir=str(policies),
                    jwt_secret="pinned-" + "p" * 40)
    services = build_services(config)
    try:
        transport = in_process(falcon.testing.TestClient(create_app(config, services)))
        alice = User(transport, config, "alice")
        service = User(transport, config, "svc", scope="check admin")
        account = alice.post("/v1/accounts", {"name": "Pinned", "policy_version": 2}).json["id"]
        v2.unlink()
        assert service.post("/v1/policies/reload").status == 200
        body = {"principal": {"id": "alice"}, "account_id": account,
                "resources": [{"kind": "report", "id": "r", "actions": ["view"]}]}
        answer = service.post("/v1/check", body)
        assert answer.status == 503 and "convert@2" in answer.json["detail"], answer.json
        assert alice.get(f"/v1/accounts/{account}/members").status == 503
    finally:
        services.mailer.stop()
        services.decisions.close()
        services.store.close()
