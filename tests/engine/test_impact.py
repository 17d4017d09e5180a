"""`rolebook policy impact`: a decision log written by the service itself, replayed against a
candidate version, reports exactly the decisions whose effect changes, grouped by kind/action and
rule, with examples; exit 1 when any flips and 0 when none does, so CI can gate on it; broken or
foreign lines are counted and named by line number; --since skips older lines."""

from __future__ import annotations

import json
import shutil

import falcon.testing
import pytest

from rolebook.api.app import build_services, create_app
from rolebook.api.cli import main
from rolebook.api.config import Config
from tests.support.client import User, in_process
from tests.support.policies import POLICY_DIR


@pytest.fixture
def candidate_dir(tmp_path):
    """The shipped policies plus convert@2, in which only owners may delete objects."""
    target = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, target)
    text = (target / "convert" / "v1.yaml").read_text()
    text = text.replace("version: 1\n", "version: 2\n", 1).replace(
        "      - name: editors-change-objects\n        actions: [create, update, delete]",
        "      - name: owners-delete-objects\n        actions: [delete]\n        effect: allow\n"
        "        min_role: owner\n"
        "      - name: editors-change-objects\n        actions: [create, update]", 1)
    (target / "convert" / "v2.yaml").write_text(text)
    return target


@pytest.fixture
def logged(tmp_path):
    """A decision log written by a real service on convert@1 (pinned), as traffic makes it."""
    config = Config(data_dir=str(tmp_path / "var"), policy_dir=str(POLICY_DIR),
                    jwt_secret="impact-" + "i" * 40, pin="convert@1")
    services = build_services(config)
    client = falcon.testing.TestClient(create_app(config, services))
    service = User(in_process(client), config, "svc", scope="check")
    for pid, role, actions in (("ed", "edit", ["view", "update", "delete"]),
                               ("ro", "read", ["view", "delete"]),
                               ("ed2", "edit", ["delete", "fly"])):
        answer = service.post("/v1/check", {"principal": {"id": pid, "role": role},
                                             "resources": [{"kind": "object", "id": "42",
                                                            "actions": actions}]})
        assert answer.status == 200, answer.json
    services.decisions.close()
    services.mailer.stop()
    services.store.close()
    return config.data_path / "decisions.log"


def impact(capsys, *argv):
    code = main(["policy", "impact", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_candidate_that_removes_a_permission_reports_who_loses_it(capsys, candidate_dir,
                                                                     logged):
    code, out, _ = impact(capsys, "convert@2", "--log", str(logged), "--policy-dir",
                          str(candidate_dir), "--json")
    report = json.loads(out)
    assert code == 1 and report["flipped"] == 2 and report["replayed"] == 7
    [change] = report["changes"]
    assert (change["kind"], change["action"], change["before"], change["after"]) == (
        "object", "delete", "allow", "deny")
    assert change["rules"] == [{"before": "convert@1#editors-change-objects",
                                "after": "convert@2#default-deny", "count": 2}]
    assert sorted(e["principal"] for e in change["examples"]) == ["ed", "ed2"]


def test_the_same_version_flips_nothing_and_exits_0(capsys, candidate_dir, logged):
    code, out, err = impact(capsys, "convert@1", "--log", str(logged), "--policy-dir",
                          str(candidate_dir))
    assert code == 0 and "no decision flips" in out and "replayed 7 decisions" in out, err


def test_broken_and_foreign_lines_are_counted_and_named(capsys, candidate_dir, logged):
    lines = logged.read_text().splitlines()
    logged.write_text("\n".join([lines[0], "not json", '{"hello": 1}', *lines[1:]]) + "\n")
    code, out, _ = impact(capsys, "convert@2", "--log", str(logged), "--policy-dir",
                          str(candidate_dir))
    assert code == 1 and "2 broken or foreign lines" in out
    assert "line 2: not JSON" in out and "line 3: not a decision-log line" in out


def test_since_skips_older_lines(capsys, candidate_dir, logged):
    code, out, _ = impact(capsys, "convert@2", "--log", str(logged), "--policy-dir",
                          str(candidate_dir), "--since", "2999-01-01T00:00:00Z", "--json")
    report = json.loads(out)
    assert code == 0 and report["replayed"] == 0 and report["skipped"]["before_since"] == 3


def test_a_candidate_that_does_not_validate_is_refused_with_its_location(capsys, candidate_dir,
                                                                         logged):
    broken = candidate_dir / "convert" / "v2.yaml"
    broken.write_text(broken.read_text().replace("min_role: edit", "min_role: editor", 1))
    code, _, err = impact(capsys, "convert@2", "--log", str(logged), "--policy-dir",
                          str(candidate_dir))
    assert code == 2 and "v2.yaml:" in err and "editor" in err
