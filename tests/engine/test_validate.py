"""Validation contract: a broken policy is refused with every problem located (file, line,
column, JSON path, plain message, stage), and the semantic errors a schema cannot see are found."""

from __future__ import annotations

from rolebook.engine import build
from tests.support.policies import CONVERT, edited, problems_of


def line_of(text: str, needle: str, nth: int = 1) -> int:
    start = -1
    for _ in range(nth):
        start = text.index(needle, start + 1)
    return text[:start].count("\n") + 1


def test_shipped_policies_are_valid():
    assert problems_of(CONVERT) == []


def test_unknown_role_in_a_rule_names_the_role_and_its_line():
    text = edited(CONVERT, "        min_role: owner\n\n  audit:",
                  "        min_role: admin\n\n  audit:")
    (problem,) = problems_of(text)
    assert "'admin'" in problem.message
    assert problem.line == line_of(text, "min_role: admin")
    assert problem.path == "$.resources.billing.rules[0].min_role"
    assert problem.stage == "semantics"
    assert str(problem).startswith(f"policies/convert/v1.yaml:{problem.line}:")


def test_unknown_role_in_a_roles_list():
    text = edited(CONVERT, "min_role: read\n      - name: editors-configure-account",
                  "roles: [read, viewer]\n      - name: editors-configure-account")
    (problem,) = problems_of(text)
    assert problem.message == "rule 'members-view-account': undefined role 'viewer'"
    assert problem.line == line_of(text, "roles: [read, viewer]")


def test_undefined_attribute_in_a_condition():
    text = edited(CONVERT, "eq: [resource.attr.is_self, true]\n\n",
                  "eq: [resource.attr.is_me, true]\n\n")
    (problem,) = problems_of(text)
    assert "undefined attribute 'is_me'" in problem.message
    assert problem.stage == "compile"
    assert problem.line == line_of(text, "resource.attr.is_me")


def test_ordering_a_role_is_a_type_error():
    text = edited(CONVERT, "le: [rank(resource.attr.role), principal.rank]",
                  "lt: [resource.attr.role, principal.role]")
    (problem,) = problems_of(text)
    assert "'lt' orders integers" in problem.message
    assert "rank(...)" in problem.message


def test_comparing_an_integer_with_a_boolean_is_a_type_error():
    text = edited(CONVERT, "le: [resource.attr.owner_count, membership.min_owners]",
                  "le: [resource.attr.owner_count, resource.attr.is_self]")
    problems = problems_of(text)
    assert problems and all("is_self" in p.message for p in problems)


def test_duplicate_rule_names():
    text = edited(CONVERT, "name: editors-change-objects", "name: members-view-objects")
    (problem,) = problems_of(text)
    assert problem.message == "duplicate rule name 'members-view-objects'"
    assert problem.line == line_of(text, "name: members-view-objects", 2)


def test_a_service_action_not_covered():
    text = edited(CONVERT, "actions: [list, view, create, resend, revoke]",
                  "actions: [list, view, create, revoke]")
    problems = problems_of(text)
    messages = [p.message for p in problems]
    assert "service action invitation.resend not covered" in messages


def test_a_missing_service_kind():
    start = CONVERT.index("  audit:\n")
    end = CONVERT.index("  member:\n")
    problems = problems_of(CONVERT[:start] + CONVERT[end:])
    assert [p.message for p in problems] == ["the service kind 'audit' is not covered"]


def test_file_name_and_version_must_agree():
    (problem,) = problems_of(CONVERT, "policies/convert/v2.yaml")
    assert problem.message == "version 1 disagrees with file name 'v2.yaml'"
    assert problem.path == "$.version"
    assert problem.line == line_of(CONVERT, "version: 1")


def test_folder_and_name_must_agree():
    (problem,) = problems_of(CONVERT, "policies/other/v1.yaml")
    assert "disagrees with folder 'other'" in problem.message


def test_duplicate_yaml_keys_are_reported_not_silently_merged():
    text = edited(CONVERT, "  min_owners: 1\n", "  min_owners: 1\n  min_owners: 2\n")
    (problem,) = problems_of(text)
    assert problem.message == "duplicate key 'min_owners'"
    assert problem.stage == "parse"
    assert problem.line == line_of(text, "min_owners: 2")


def test_schema_errors_are_all_reported_with_paths():
    text = edited(CONVERT, "effect: allow\n        min_role: read\n      - name: editors-configure",
                  "effect: permit\n        min_role: read\n      - name: editors-configure")
    text = edited(text, "invitation_ttl_hours: 168", "invitation_ttl_hours: forever")
    problems = problems_of(text)
    paths = {p.path for p in problems}
    assert "$.membership.invitation_ttl_hours" in paths
    assert "$.resources.account.rules[0].effect" in paths
    assert all(p.stage == "schema" for p in problems)


def test_not_yaml_reports_a_position():
    outcome = build("policies/convert/v1.yaml", "name: [unclosed\n")
    (problem,) = outcome.problems
    assert problem.stage == "parse" and problem.line >= 1


def test_a_near_miss_is_answered_with_the_declared_name():
    text = edited(CONVERT, "min_role: read\n      - name: editors-configure-account",
                  "min_role: edt\n      - name: editors-configure-account")
    text = edited(text, "actions: [update]", "actions: [updte]")
    messages = [p.message for p in problems_of(text)]
    assert "rule 'members-view-account': undefined role 'edt' (did you mean 'edit'?)" \
        in messages
    assert ("rule 'editors-configure-account': undefined action 'updte' for account "
            "(did you mean 'update'?)") in messages


def test_a_mistyped_attribute_in_a_condition_is_suggested():
    text = edited(CONVERT, "resource.attr.target_role", "resource.attr.target_rol")
    (problem, *_) = problems_of(text)
    assert "undefined attribute 'target_rol' (did you mean 'target_role'?)" in problem.message
    assert problem.message.startswith("rule '")  # named, not only rules[i]


def test_an_unknown_key_points_at_the_key():
    text = edited(CONVERT, "        min_role: owner\n\n  audit:",
                  "        min_role: owner\n        colour: red\n\n  audit:")
    (problem,) = problems_of(text)
    assert problem.message == "rule 'owners-manage-billing': unknown key(s): colour"
    line = line_of(text, "colour: red")
    assert (problem.line, problem.column) == (line, text.splitlines()[line - 1].index("c") + 1)


def test_an_empty_value_is_called_null_not_none():
    text = edited(CONVERT, "        min_role: owner\n\n  audit:", "        min_role:\n\n  audit:")
    (problem,) = problems_of(text)
    assert "null (an empty value) is not of type 'string'" in problem.message
    assert "None" not in problem.message


def test_indentation_mistakes_are_explained_in_words_about_yaml():
    text = edited(CONVERT, "  min_owners: 1\n", "   min_owners: 1\n")
    (problem,) = problems_of(text)
    assert problem.stage == "parse" and problem.line == line_of(text, "   min_owners: 1")
    assert "indent" in problem.message and "the YAML parser says" in problem.message
    tabbed = edited(CONVERT, "  min_owners: 1\n", "\tmin_owners: 1\n")
    assert "YAML indents with spaces only" in problems_of(tabbed)[0].message
