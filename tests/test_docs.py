"""Docs and code agree: README, openapi.yaml, the route table, the settings and CI.

Protects: every route the app serves is in openapi.yaml and the README, and
every path in openapi.yaml is served; every setting is in the README with its
flag and variable; every status code the contract names is explained in the
README; CI runs exactly the README's test command; the service reads the same
openapi.yaml, also when installed from a wheel.
"""

from __future__ import annotations

import re
import tomllib

import yaml

from rolebook.api import contract
from rolebook.api.app import routes
from rolebook.api.config import SETTINGS
from tests.support.policies import REPO

README = (REPO / "README.md").read_text()
OPENAPI = yaml.safe_load((REPO / "openapi.yaml").read_text())
METHODS = {"get", "post", "put", "patch", "delete"}


class _Anything:
    def __getattr__(self, name):
        return self


def served() -> dict[str, set[str]]:
    """Path → methods, read from the route table's resources (on_get, on_post, ...)."""
    out = {}
    for path, resource in routes(_Anything()):
        path = re.sub(r"{(\w+):[^}]*}", r"{\1}", path)
        out[path] = {m for m in METHODS if hasattr(resource, f"on_{m}")}
    return out


def test_every_served_route_is_in_openapi_and_back():
    documented = {p: {m for m in item if m in METHODS} for p, item in OPENAPI["paths"].items()}
    assert served() == documented


def test_every_route_is_in_the_readme():
    for path, methods in served().items():
        for method in methods:
            assert f"`{method.upper()} {path}`" in README or (
                f"{method.upper()} {path}" in README), f"{method.upper()} {path} not in README"


def test_every_setting_is_in_the_readme():
    for setting in SETTINGS:
        assert f"`{setting.flag}`" in README, setting.flag
        assert f"`{setting.env}`" in README, setting.env


def test_every_status_code_is_explained():
    codes = set()
    for item in OPENAPI["paths"].values():
        for method, op in item.items():
            if method in METHODS:
                codes |= {int(c) for c in op["responses"] if c.isdigit() and int(c) >= 400}
    for code in codes:
        assert re.search(rf"^\| {code} \|", README, re.M), f"status {code} not in README"


def test_ci_runs_the_readme_test_command():
    assert "make test" in README and "make run" in README
    ci = (REPO / ".ci/run").read_text()
    assert re.search(r"^make test$", ci, re.M)


def test_the_service_validates_against_the_repositorys_openapi_yaml_and_ships_it():
    # api/openapi.yaml is a link, so the contract is one file and a wheel's package data
    # (`"rolebook.api" = ["*.yaml"]`) carries its content: an installed service finds it
    # without the repo.
    shipped = REPO / "api" / "openapi.yaml"
    assert shipped.is_symlink() and shipped.resolve() == (REPO / "openapi.yaml").resolve()
    assert "*.yaml" in tomllib.loads((REPO / "pyproject.toml").read_text())[
        "tool"]["setuptools"]["package-data"]["rolebook.api"]
    assert contract.openapi() == OPENAPI
