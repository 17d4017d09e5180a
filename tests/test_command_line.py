"""The `rolebook` command line as a new user meets it outside a checkout: `init` writes a policy
folder that validates and passes its tests, `serve` without policies says what to run and leaves
nothing behind, `token` signs with the server's key or refuses, every argument has help, the
README's tooling table matches the parser, and the tools start without the service's libraries.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from rolebook.api.cli import _leaves, build_parser, main
from tests.support.policies import REPO

README = (REPO / "README.md").read_text()


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_writes_a_policy_folder_that_validates_and_passes_its_tests(capsys, tmp_path):
    folder = tmp_path / "mine"
    code, out, _ = run(capsys, "init", str(folder))
    assert code == 0 and f"--policy-dir {folder}" in out
    written = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    shipped = sorted(p.relative_to(REPO / "policies").as_posix()
                     for p in (REPO / "policies").rglob("*.yaml"))
    assert written == sorted([*shipped, "policy.schema.json", "policy_test.schema.json"])
    # Each modeline points at a schema that exists beside the copy.
    for file in folder.rglob("*.yaml"):
        target = re.match(r"# yaml-language-server: \$schema=(\S+)", file.read_text()).group(1)
        assert (file.parent / target).resolve().is_file(), file
    assert run(capsys, "policy", "validate", "--policy-dir", str(folder))[0] == 0
    code, out, _ = run(capsys, "policy", "test", "--policy-dir", str(folder))
    assert code == 0 and re.search(r"^\d+ passed, 0 failed$", out, re.M)


def test_init_refuses_a_folder_that_is_not_empty_and_names_what_it_would_overwrite(
        capsys, tmp_path):
    (tmp_path / "convert").mkdir()
    (tmp_path / "convert" / "v1.yaml").write_text("mine\n")
    code, _, err = run(capsys, "init", str(tmp_path))
    assert code == 1 and "convert/v1.yaml" in err and "anytrack/v1.yaml" not in err
    assert (tmp_path / "convert" / "v1.yaml").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["convert"]


def rolebook(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "rolebook", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=60, env=env)


def test_serve_without_policies_says_what_to_run_and_writes_nothing(tmp_path):
    done = rolebook("serve", "--port", "0", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "rolebook init" in lines[0] and "--policy-dir" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_token_refuses_without_the_servers_key_and_names_the_data_folder(capsys, tmp_path):
    code, out, err = run(capsys, "token", "--sub", "a", "--email", "a@example.com",
                         "--data-dir", str(tmp_path / "var"))
    assert code == 2 and out == "" and "--data-dir" in err
    assert not (tmp_path / "var").exists()


def test_token_signs_with_the_data_folders_key_and_says_which(capsys, tmp_path):
    from rolebook.api.auth import Verifier
    from rolebook.api.config import Config, jwt_secret

    config = Config(data_dir=str(tmp_path / "var"))
    jwt_secret(config)  # what `rolebook serve` does on its first start
    code, out, err = run(capsys, "token", "--sub", "a", "--email", "a@example.com",
                         "--scope", "check", "--data-dir", str(tmp_path / "var"))
    assert code == 0 and str(tmp_path / "var" / "jwt-secret") in err
    caller = Verifier(config).verify(out.strip())
    assert caller.id == "a" and caller.has("check")


def test_an_unknown_option_prints_the_subcommands_usage(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["policy", "matrix", "convert", "--bogus"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: rolebook policy matrix") and "--bogus" in err


def test_every_argument_has_help_and_defaults_print_as_words():
    for parser in _leaves(build_parser()):
        for action in parser._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"{parser.prog} {action.option_strings or action.dest}"
            assert "[default 0]" not in (action.help or "")
    serve = next(p for p in _leaves(build_parser()) if p.prog.endswith(" serve"))
    workers = next(a for a in serve._actions if "--workers" in a.option_strings)
    assert "default: one and a half per core (rounded up)" in workers.help


def test_token_help_shows_only_what_minting_needs():
    token = next(p for p in _leaves(build_parser()) if p.prog.endswith(" token"))
    flags = {f for a in token._actions for f in a.option_strings}
    assert {"--sub", "--email", "--data-dir", "--jwt-secret"} <= flags
    assert not flags & {"--port", "--host", "--database-url", "--mail-url", "--workers"}


def tooling_rows() -> dict[str, str]:
    table = README[README.index("### Tooling"):README.index("## HTTP API")]
    rows = re.findall(r"^\| `rolebook ([^`]+)` \|", table, re.M)
    return {re.match(r"[a-z ]+?(?= [A-Z\[-]|$)", row).group(0).strip(): row for row in rows}


def test_the_readmes_tooling_table_matches_the_parser():
    rows = tooling_rows()
    commands = {p.prog.removeprefix("rolebook "): p for p in _leaves(build_parser())}
    assert set(rows) == set(commands)
    for name, row in rows.items():
        parser = commands[name]
        flags = {f for a in parser._actions for f in a.option_strings}
        for flag in re.findall(r"(--[a-z-]+|-v\b)", row):
            assert flag in flags, f"README names {flag} for {name}"
        for action in parser._actions:
            if not action.option_strings:  # a positional: its metavar is in the row
                assert action.metavar.replace("|", "\\|") in row, f"{name}: {action.metavar}"
        if name.startswith("policy ") and name != "policy activate":  # reads no folder
            assert "--policy-dir" in flags


# Runs one command, then prints its exit code, the service's libraries loaded and the modules
# of the API and storage loaded beyond the command line and the settings.
TOOL_PROBE = """
import sys
from rolebook.api.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
libraries = {m.split(".")[0] for m in sys.modules}
libraries &= {"falcon", "pony", "jwt", "waitress", "prometheus_client"}
service = [m for m in sys.modules if m.startswith(("rolebook.api.", "rolebook.storage"))
           and not m.startswith(("rolebook.api.cli", "rolebook.api.commands",
                                 "rolebook.api.config"))]
print(code, sorted(libraries), sorted(service), file=sys.stderr)
"""
CHECK_LINE = ('{"policy": "convert", "principal": {"id": "u1", "role": "owner"}, '
              '"resources": [{"kind": "account", "actions": ["read"]}]}\n')


@pytest.mark.parametrize("argv", [
    ["--help"], ["policy", "validate", "--help"], ["policy", "validate"], ["policy", "test"],
    ["policy", "matrix", "convert"], ["policy", "diff", "convert@1", "convert@1"], ["check"],
])
def test_the_tools_start_without_the_services_libraries(argv):
    """The policy tools run on the shipped policies with the engine and the settings alone."""
    done = subprocess.run([sys.executable, "-c", TOOL_PROBE, *argv], cwd=REPO, text=True,
                          capture_output=True, timeout=60, input=CHECK_LINE)
    assert done.stderr.strip().splitlines()[-1] == "0 [] []", done.stderr


def test_testing_one_policy_is_not_failed_by_a_broken_neighbour(capsys, tmp_path):
    folder = tmp_path / "policies"
    assert run(capsys, "init", str(folder))[0] == 0
    convert = folder / "convert" / "v1.yaml"
    convert.write_text(convert.read_text().replace("min_role: edit", "min_role: editor", 1))
    code, out, _ = run(capsys, "policy", "test", str(folder / "anytrack"))
    assert code == 0 and re.search(r"^\d+ passed, 0 failed$", out, re.M)
    code, out, _ = run(capsys, "policy", "test", "--policy-dir", str(folder))
    assert code == 1 and "0 passed, 1 failed" in out


def test_diff_exits_0_only_when_the_versions_agree(capsys):
    policies = str(REPO / "policies")
    assert run(capsys, "policy", "diff", "convert@1", "convert@1", "--policy-dir", policies)[0] \
        == 0


def test_the_pre_commit_hooks_run_real_commands():
    import yaml

    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {"rolebook-validate", "rolebook-test"}
    parser = build_parser()
    for hook in hooks:
        program, *argv = hook["entry"].split()
        assert program == "rolebook"
        args = parser.parse_args([*argv, "--policy-dir", str(REPO / "policies")])
        assert args.run(args) == 0, hook["id"]
