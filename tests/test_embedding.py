"""The public in-process API: the README's "Embed the engine" example runs and prints what the
README says, its Decisions are the ones the service's check path gives, and importing `rolebook`
for the command line does not load the engine."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys

import rolebook
from rolebook.engine.check_request import answer
from tests.support.policies import REPO

README = (REPO / "README.md").read_text()


def block(language: str) -> str:
    section = README[README.index("## Embed the engine"):README.index("## HTTP API")]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs_and_prints_what_the_readme_says(monkeypatch):
    monkeypatch.chdir(REPO)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block("python"), "README.md", "exec"), {})
    assert out.getvalue() == block("text")


def test_in_process_decisions_are_the_services():
    policies = rolebook.load(REPO / "policies")
    principal = {"id": "u_7", "role": "edit"}
    resources = [{"kind": "member", "id": "u_9", "actions": ["update_role", "remove"],
                  "attr": {"target_role": "owner", "new_role": "edit", "is_self": False,
                           "owner_count": 2}},
                 {"kind": "object", "id": "42", "actions": ["view", "delete", "fly"]}]
    served = answer(policies.snapshot, {"principal": principal, "policy": "convert",
                                        "resources": resources}, "convert")
    mine = policies.check_many("convert", principal, resources)
    assert [{a: d.as_dict() for a, d in r.items()} for r in mine] == [
        r["actions"] for r in served["results"]]
    single = policies.check("convert", principal, "member", "remove", resource_id="u_9",
                            attr=resources[0]["attr"])
    assert single == mine[0]["remove"] and not single.allowed


def test_explain_matrix_and_diff_read_the_same_policy():
    policies = rolebook.load(REPO / "policies", pins={"convert": 1})
    decision, trace = policies.explain("convert", {"id": "a", "role": "read"}, "member",
                                       "update_role", attr={"new_role": "edit",
                                                            "target_role": "read",
                                                            "is_self": True, "owner_count": 1})
    assert not decision.allowed and trace
    table = policies.matrix("convert")
    assert (table["policy"], table["version"], table["roles"]) == ("convert", 1,
                                                                   ["read", "edit", "owner"])
    assert not policies.diff("convert", 1, 1).changes


def test_public_names_are_declared_and_importing_rolebook_loads_no_engine():
    assert set(rolebook.__all__) <= set(dir(rolebook))
    probe = "import sys, rolebook; print('rolebook.engine' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "False"
