"""The `rolebook` policy commands and offline `check`: exit codes, output an administrator can act
on (file:line:col for problems, the deciding rule for failures, a pytest-like summary), and one
JSON answer line per JSON request line for both shipped products."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from rolebook.api.cli import main
from tests.support.policies import POLICY_DIR, REPO

DIR = ["--policy-dir", str(POLICY_DIR)]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_prints_each_policy_and_digest(capsys, snapshot):
    code, out, _ = run(capsys, "policy", "validate", str(POLICY_DIR))
    assert code == 0
    assert out.splitlines() == [f"{p.ref} {p.digest}" for p in snapshot.all()]


def test_validate_defaults_to_the_policy_dir_variable(capsys, monkeypatch):
    monkeypatch.setenv("ROLEBOOK_POLICY_DIR", str(POLICY_DIR))
    assert run(capsys, "policy", "validate")[0] == 0


def test_validate_names_an_unknown_role_and_its_line(capsys, policy_copy):
    file = policy_copy / "convert" / "v1.yaml"
    text = file.read_text().replace("min_role: owner\n\n  audit:", "min_role: admin\n\n  audit:")
    file.write_text(text)
    before = text[:text.index("admin")]
    line, column = before.count("\n") + 1, len(before) - before.rindex("\n")
    code, out, _ = run(capsys, "policy", "validate", str(policy_copy))
    assert code == 1
    where = "$.resources.billing.rules[0].min_role"
    expected = (f"{file}:{line}:{column}: {where}: rule 'owners-manage-billing': "
                "undefined role 'admin' [semantics]")
    assert expected in out.splitlines()


def test_validate_reports_every_problem(capsys, policy_copy):
    for name in ("convert", "anytrack"):
        file = policy_copy / name / "v1.yaml"
        file.write_text(file.read_text().replace("min_owners: 1", "min_owners: 0"))
    code, out, _ = run(capsys, "policy", "validate", str(policy_copy))
    assert code == 1 and len(out.splitlines()) == 2


def test_validate_with_nothing_to_validate(capsys, tmp_path):
    code, out, _ = run(capsys, "policy", "validate", str(tmp_path))
    assert code == 1 and "no policy files found" in out


def test_policy_test_passes_with_full_coverage(capsys):
    code, out, _ = run(capsys, "policy", "test", str(POLICY_DIR), "--coverage")
    lines = out.splitlines()
    assert code == 0
    assert lines[-1].endswith(" passed, 0 failed")
    assert "0 rule(s) no test exercised" in out


def test_policy_test_verbose_lists_passes(capsys):
    _, out, _ = run(capsys, "policy", "test", str(POLICY_DIR / "convert"), "-v")
    assert "PASSED convert-table :: only the owner deletes the account :: olga delete" in out


def test_policy_test_failure_shows_the_case_and_the_deciding_rule(capsys, policy_copy):
    suite = policy_copy / "convert" / "tests" / "table_test.yaml"
    suite.write_text(suite.read_text().replace(
        "    principals: [olga]\n    resources: [account]\n    expected: {delete: allow}",
        "    principals: [olga]\n    resources: [account]\n    expected: {delete: deny}"))
    code, out, _ = run(capsys, "policy", "test", str(policy_copy))
    assert code == 1
    assert out.splitlines()[-1].endswith(" passed, 1 failed")
    assert "principal: olga" in out and "action:    delete" in out
    assert "expected:  deny" in out
    assert "actual:    allow by rule convert@1#owners-delete-account" in out


def test_policy_test_of_a_single_suite_file(capsys):
    suite = POLICY_DIR / "anytrack" / "tests" / "self_service_test.yaml"
    code, out, _ = run(capsys, "policy", "test", str(suite))
    assert code == 0 and out.splitlines()[-1].endswith(" passed, 0 failed")


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_matrix_formats(capsys, fmt):
    code, out, _ = run(capsys, "policy", "matrix", "convert@1", *DIR, "--format", fmt)
    assert code == 0
    if fmt == "json":
        table = json.loads(out)
        assert table["roles"] == ["read", "edit", "owner"]
    elif fmt == "markdown":
        assert "| kind.action | read | edit | owner |" in out
    else:
        assert out.splitlines()[2].split() == ["kind.action", "read", "edit", "owner"]


def test_matrix_of_an_unknown_version(capsys):
    code, _, err = run(capsys, "policy", "matrix", "convert@9", *DIR)
    assert code == 1 and "convert@9 is not loaded" in err


def test_diff_needs_versions(capsys):
    with pytest.raises(SystemExit):
        main(["policy", "diff", "convert", "convert@1", *DIR])


def write_lines(tmp_path, *bodies):
    path = tmp_path / "checks.jsonl"
    path.write_text("\n".join(b if isinstance(b, str) else json.dumps(b) for b in bodies) + "\n")
    return path


CONVERT_CHECK = {"principal": {"id": "u_7", "role": "edit"}, "policy": "convert",
                 "resources": [{"kind": "object", "id": "42", "actions": ["view", "delete"]},
                               {"kind": "billing", "actions": ["view"]}]}
ANYTRACK_CHECK = {"principal": {"id": "u_8", "role": "manager"}, "policy": "anytrack",
                  "resources": [{"kind": "invitation", "attr": {"role": "owner"},
                                 "actions": ["create"]},
                                {"kind": "dataset", "id": "ds", "actions": ["edit"]}]}


def effects(answer):
    return [{a: d["effect"] for a, d in r["actions"].items()} for r in answer["results"]]


def test_check_answers_json_lines_for_both_products(capsys, tmp_path):
    path = write_lines(tmp_path, CONVERT_CHECK, "", ANYTRACK_CHECK)
    code, out, _ = run(capsys, "check", str(path), *DIR)
    assert code == 0
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["policy"] == "convert" and second["policy"] == "anytrack"
    assert effects(first) == [{"view": "allow", "delete": "allow"}, {"view": "deny"}]
    assert effects(second) == [{"create": "deny"}, {"edit": "allow"}]
    assert first["results"][1]["actions"]["view"]["rule"] == "convert@1#default-deny"


def test_check_uses_the_default_policy_and_explains(capsys, tmp_path):
    body = {"principal": {"id": "u_8", "role": "member_read"},
            "resources": [{"kind": "property", "actions": ["edit"]}]}
    path = write_lines(tmp_path, body)
    code, out, _ = run(capsys, "check", str(path), *DIR, "--default-policy", "anytrack",
                       "--explain")
    answer = json.loads(out)
    assert code == 0 and answer["policy"] == "anytrack"
    assert "trace" in answer["results"][0]["actions"]["edit"]


def test_check_reports_bad_lines_and_keeps_going(capsys, tmp_path):
    path = write_lines(tmp_path, "{not json", {"principal": {"id": "u"}, "resources": []},
                       CONVERT_CHECK)
    code, out, _ = run(capsys, "check", str(path), *DIR)
    first, second, third = (json.loads(line) for line in out.splitlines())
    assert code == 1
    assert first["error"]["line"] == 1 and first["error"]["field"] == "$"
    assert second["error"] == {"line": 2, "field": "principal.role",
                               "message": second["error"]["message"]}
    assert third["policy"] == "convert"


def test_check_reads_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(ANYTRACK_CHECK) + "\n"))
    code, out, _ = run(capsys, "check", "-", *DIR)
    assert code == 0 and effects(json.loads(out)) == [{"create": "deny"}, {"edit": "allow"}]


def test_check_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "check", str(tmp_path / "none.jsonl"), *DIR)
    assert code == 1 and "cannot read" in err


def test_the_module_entry_point_runs_in_a_subprocess(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "ROLEBOOK_POLICY_DIR": str(POLICY_DIR)}
    done = subprocess.run([sys.executable, "-m", "rolebook", "check", "-"], cwd=tmp_path, env=env,
                          input=json.dumps(CONVERT_CHECK) + "\n", capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert effects(json.loads(done.stdout))[0] == {"view": "allow", "delete": "allow"}
