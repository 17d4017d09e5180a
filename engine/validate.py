"""Schema and semantic validation: every problem, with file, line, column and JSON path.

The JSON Schema checks shape; the semantic pass checks what a schema cannot:
names that must refer to declared roles, actions and attributes, duplicate
rules, the service vocabulary, and the file name agreeing with the content.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from pathlib import PurePath

from jsonschema import Draft202012Validator

from rolebook.engine.loader import Source
from rolebook.engine.problems import PolicyProblem, did_you_mean
from rolebook.engine.vocabulary import RESERVED_RULE_NAMES, SERVICE_ATTRIBUTES, SERVICE_KINDS

FILE_NAME = re.compile(r"^v([1-9][0-9]*)\.ya?ml$")


@cache
def schema() -> dict:
    return json.loads(resources.files("rolebook.engine").joinpath("policy.schema.json").read_text())


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_problems(source: Source) -> list[PolicyProblem]:
    errors = sorted(_validator().iter_errors(source.data), key=lambda e: list(e.absolute_path))
    out = []
    for error in errors:
        path = tuple(error.absolute_path)
        unknown = error.validator == "additionalProperties"
        if unknown:  # point at the first unknown key
            path += tuple(_unknown_keys(error)[:1])
        out.append(source.problem(path, _plain(error), "schema", at_key=unknown))
    return out


def _unknown_keys(error) -> list[str]:
    return sorted(set(error.instance) - set(error.schema.get("properties", {})))


# YAML's words for what Python prints as None, True and False: `min_role:` with nothing after
# it is null in YAML, and "None is not of type 'string'" reads like a Python error.
_YAML_WORDS = {"None": "null (an empty value)", "True": "true", "False": "false"}


def _plain(error) -> str:
    if error.validator == "additionalProperties":
        extra = _unknown_keys(error)
        names = ", ".join(extra)
        hint = did_you_mean(extra[0], error.schema.get("properties", {})) if extra else ""
        return f"unknown key(s): {names}{hint}"
    if error.validator == "not" and "roles" in error.instance and "min_role" in error.instance:
        return "give either roles or min_role, not both"
    message = error.message
    if isinstance(error.instance, bool | None):
        word = repr(error.instance)
        message = message.replace(word, _YAML_WORDS[word], 1)
    return message


def semantic_problems(source: Source) -> list[PolicyProblem]:
    """Checks that need the whole document; assumes it passed the schema."""
    doc = source.data
    out: list[PolicyProblem] = []

    def report(path: tuple, message: str) -> None:
        out.append(source.problem(path, message, "semantics"))

    _check_file_name(source, doc, report)
    roles = [r["name"] for r in doc["roles"]]
    seen_roles: set[str] = set()
    for i, role in enumerate(roles):
        if role in seen_roles:
            report(("roles", i, "name"), f"duplicate role {role!r}")
        seen_roles.add(role)
    if doc["membership"]["owner_role"] not in seen_roles:
        named = doc["membership"]["owner_role"]
        report(("membership", "owner_role"),
               f"undefined role {named!r}{did_you_mean(named, seen_roles)}")

    for kind, actions in SERVICE_KINDS.items():
        if kind not in doc["resources"]:
            report(("resources",), f"the service kind {kind!r} is not covered")
            continue
        declared = doc["resources"][kind]["actions"]
        for action in actions:
            if action not in declared:
                report(("resources", kind, "actions"),
                       f"service action {kind}.{action} not covered")

    rule_names: dict[str, tuple] = {}
    for kind, resource in doc["resources"].items():
        _check_resource(kind, resource, seen_roles, rule_names, report)
    return out


def _check_file_name(source: Source, doc: dict, report) -> None:
    path = PurePath(source.file)
    match = FILE_NAME.match(path.name)
    if not match:
        report(("version",), f"file name {path.name!r} must be v<version>.yaml")
    elif int(match.group(1)) != doc["version"]:
        report(("version",), f"version {doc['version']} disagrees with file name {path.name!r}")
    if path.parent.name and path.parent.name != doc["name"]:
        report(("name",), f"name {doc['name']!r} disagrees with folder {path.parent.name!r}")


def _check_resource(kind, resource, roles, rule_names, report) -> None:
    base = ("resources", kind)
    allowed_attrs = SERVICE_ATTRIBUTES.get(kind)
    for name, kind_type in resource.get("attributes", {}).items():
        if allowed_attrs is None:
            continue
        if name not in allowed_attrs:
            report((*base, "attributes", name), f"the service fills no attribute {name!r} for "
                                                f"{kind}{did_you_mean(name, allowed_attrs)}")
        elif allowed_attrs[name] != kind_type:
            report((*base, "attributes", name),
                   f"{kind}.{name} is a {allowed_attrs[name]}, not a {kind_type}")
    declared = set(resource["actions"])
    used: set[str] = set()
    for i, rule in enumerate(resource["rules"]):
        here = (*base, "rules", i)
        name = rule["name"]
        if name in RESERVED_RULE_NAMES:
            report((*here, "name"), f"rule name {name!r} is reserved")
        if name in rule_names:
            report((*here, "name"), f"duplicate rule name {name!r}")
        rule_names[name] = here
        for j, action in enumerate(rule["actions"]):
            if action not in declared:
                report((*here, "actions", j), f"undefined action {action!r} for {kind}"
                                              f"{did_you_mean(action, declared)}")
            used.add(action)
        for j, role in enumerate(rule.get("roles", [])):
            if role not in roles:
                report((*here, "roles", j), f"undefined role {role!r}{did_you_mean(role, roles)}")
        if "min_role" in rule and rule["min_role"] not in roles:
            report((*here, "min_role"),
                   f"undefined role {rule['min_role']!r}{did_you_mean(rule['min_role'], roles)}")
    for action in sorted(declared - used):
        report((*base, "actions"), f"no rule mentions {kind}.{action}; it could never be allowed")
