"""Matrix and diff contracts: the matrix shows what the evaluator does (constant cells as yes/no,
conditional cells with the rules and conditions that decide them), and the diff of two versions
reports exactly the cases whose decision changed, over an exhaustive, counted case set."""

from __future__ import annotations

import json

from rolebook.api.cli import main
from rolebook.engine import load_snapshot, matrix
from rolebook.engine.diff import diff
from tests.support.policies import CONVERT


def row(table, kind, action):
    return next(r["cells"] for r in table["rows"] if (r["kind"], r["action"]) == (kind, action))


def test_matrix_matches_the_spec_table_for_unconditional_cells(snapshot):
    table = matrix.table(snapshot.get("convert"))
    effects = {role: c["effect"] for role, c in row(table, "billing", "view").items()}
    assert effects == {"read": "deny", "edit": "deny", "owner": "allow"}
    assert row(table, "object", "create")["edit"] == {"effect": "allow",
                                                      "rule": "editors-change-objects"}


def test_matrix_names_the_condition_of_conditional_cells(snapshot):
    table = matrix.table(snapshot.get("convert"))
    cell = row(table, "invitation", "create")["edit"]
    assert cell["effect"] == "conditional"
    (note,) = [n for n in table["notes"] if n["note"] == cell["note"]]
    assert note["allow_when"] == [{"rule": "inviters-grant-up-to-own-rank",
                                   "condition": "rank(resource.attr.role) <= principal.rank"}]
    text = matrix.render(table)
    assert "allow by inviters-grant-up-to-own-rank when rank(resource.attr.role)" in text


def test_a_cell_with_no_allow_rule_is_a_plain_no(snapshot):
    table = matrix.table(snapshot.get("anytrack"))
    assert row(table, "member", "remove")["member_read"]["effect"] == "deny"
    assert row(table, "member", "update_role")["owner"]["effect"] == "conditional"


def versions(tmp_path, v2_text):
    folder = tmp_path / "convert"
    folder.mkdir()
    (folder / "v1.yaml").write_text(CONVERT)
    (folder / "v2.yaml").write_text(v2_text.replace("version: 1\n", "version: 2\n", 1))
    snap = load_snapshot(tmp_path)
    return snap.get("convert", 1), snap.get("convert", 2)


def test_identical_versions_have_no_difference(tmp_path):
    a, b = versions(tmp_path, CONVERT)
    result = diff(a, b)
    assert result.changes == [] and result.cases > 1000


def test_diff_reports_exactly_the_changed_cases(tmp_path):
    # v2: editors may no longer invite editors, only readers.
    changed = CONVERT.replace("le: [rank(resource.attr.role), principal.rank]",
                              "lt: [rank(resource.attr.role), principal.rank]")
    a, b = versions(tmp_path, changed)
    result = diff(a, b)
    got = {(c.kind, c.action, c.role, dict(c.facts)["role"]) for c in result.changes}
    assert got == {("invitation", action, role, role)
                   for action in ("create", "resend") for role in ("edit", "owner")}
    assert all((c.before.effect, c.after.effect) == ("allow", "deny") for c in result.changes)


def test_diff_of_a_setting_counts_boundaries(tmp_path):
    a, b = versions(tmp_path, CONVERT.replace("min_owners: 1", "min_owners: 2"))
    result = diff(a, b)
    assert "membership.min_owners: 1 -> 2" in result.settings
    counts = {dict(c.facts)["owner_count"] for c in result.changes}
    assert counts == {2}
    assert {c.action for c in result.changes} == {"update_role", "remove", "leave"}


def test_diff_of_an_added_role(tmp_path):
    v2 = CONVERT.replace("roles:\n", "roles:\n  - name: guest\n", 1)
    v2 = v2.replace("members-view-reports\n        actions: [view]\n        effect: allow\n"
                    "        min_role: read", "members-view-reports\n        actions: [view]\n"
                    "        effect: allow\n        min_role: guest")
    a, b = versions(tmp_path, v2)
    result = diff(a, b)
    # A fact naming the new role fails closed in v1 and is a real role in v2: those differ too.
    plain = {(c.kind, c.action, c.role) for c in result.changes
             if "guest" not in dict(c.facts).values()}
    assert plain == {("report", "view", "guest"), ("member", "leave", "guest")}
    assert "roles: ['read', 'edit', 'owner'] -> ['guest', 'read', 'edit', 'owner']" in (
        result.settings)


def test_diff_command_says_it_is_exhaustive(tmp_path, capsys):
    changed = CONVERT.replace("name: owners-delete-account\n        actions: [delete]\n"
                              "        effect: allow\n        min_role: owner",
                              "name: owners-delete-account\n        actions: [delete]\n"
                              "        effect: allow\n        min_role: edit")
    versions(tmp_path, changed)
    # Exit 1 when the versions differ, as diff(1) does.
    assert main(["policy", "diff", "convert@1", "convert@2", "--policy-dir", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == ("account.delete role=edit: deny (convert@1#default-deny) -> "
                        "allow (convert@2#owners-delete-account)")
    assert lines[-1].startswith("1 of ") and "the diff is exhaustive over" in lines[-1]
    assert len(lines) == 4


def test_matrix_json_is_what_the_api_can_serve(snapshot, capsys):
    assert main(["policy", "matrix", "anytrack", "--format", "json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["digest"] == snapshot.get("anytrack").digest


def test_the_matrix_marks_invariant_rules_apart_from_plain_refusals(snapshot):
    """keep-an-owner is `conflict: true` (409), nobody-raises-own-role a plain deny (403)."""
    drawn = matrix.table(snapshot.get("convert", 1))
    denies = {r["rule"]: r["conflict"] for n in drawn["notes"] for r in n["deny_when"]}
    assert denies["keep-an-owner"] is True and denies["nobody-raises-own-role"] is False
    text = matrix.render(drawn)
    assert "but refuse as a conflict (409) by keep-an-owner when" in text
    assert "deny by keep-an-owner" not in text
