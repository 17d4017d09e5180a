"""Product knowledge lives only in policy files: no Python under engine/, api/ or storage/ names a
role or a policy of the shipped policies (taken from the policy files themselves), so a third
product is one YAML file. Comments and docstrings are prose and are not checked; attribute access
(`handle.read()`) is a library's name, not ours."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

from tests.support.policies import POLICY_DIR, REPO

PACKAGES = ("engine", "api", "storage", "rolebook")
# `--default-policy` defaults to the Convert policy (README, settings table); the settings
# registry is the one place allowed to say so (and to give an example of --pin).
ALLOWED = {("api/config.py", "convert"), ("api/config.py", "anytrack")}


def shipped_names() -> tuple[set[str], set[str]]:
    products, roles = set(), set()
    for file in POLICY_DIR.glob("*/v*.yaml"):
        doc = yaml.safe_load(file.read_text())
        products.add(doc["name"])
        roles.update(r["name"] for r in doc["roles"])
    return products, roles


def docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def identifiers(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.keyword) and node.arg:
        return [node.arg]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    return []


def findings(path: Path, products: set[str], roles: set[str], root: Path = REPO) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    skip = docstrings(tree)
    names = products | roles
    words = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, sorted(products))) + r")(?![\w-])")
    out = []
    for node in ast.walk(tree):
        found = [n for n in identifiers(node) if n in names]
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            if node.value in names:
                found.append(node.value)
            found += words.findall(node.value)
        where = path.relative_to(root).as_posix()
        out += [f"{where}:{node.lineno}: {name!r}" for name in found
                if (where, name) not in ALLOWED]
    return out


def test_the_names_are_taken_from_the_policies():
    products, roles = shipped_names()
    assert {"convert", "anytrack"} <= products
    assert {"owner", "manager", "member_read"} <= roles


def test_no_python_names_a_shipped_role_or_product():
    products, roles = shipped_names()
    files = [f for pkg in PACKAGES for f in sorted((REPO / pkg).rglob("*.py"))]
    assert files
    problems = [hit for f in files for hit in findings(f, products, roles)]
    assert problems == []


def test_the_checker_catches_a_hard_coded_role(tmp_path):
    products, roles = shipped_names()
    sample = tmp_path / "sample.py"
    sample.write_text('"""Docstrings may say owner."""\n# a comment: manager\n'
                      'def f(role):\n    return role == "owner" or manager\n'
                      'X = f"policy convert@1"\nY = handle.read()\n')
    hits = findings(sample, products, roles, tmp_path)
    assert sorted(hits) == ["sample.py:4: 'manager'", "sample.py:4: 'owner'",
                            "sample.py:5: 'convert'"]
