"""A `/v1/check` body: its schema, and the one function that answers it.

`check_request.schema.json` ships with the engine and is the contract of a
body: at most 100 resources of at most 50 actions, no unknown keys. The
offline `rolebook check` validates each line with it (`answer`); the HTTP
endpoint validates against openapi.yaml's CheckRequest, which a test holds
equal to this schema, and calls `answer_valid`, the same decision code, so an
offline answer and a served one cannot disagree. The HTTP layer fills
`principal.role` (and stored facts) before calling; offline there is no
storage, so the role must be given.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources

from rolebook.engine.fast_schema import fast_validator
from rolebook.engine.model import Policy
from rolebook.engine.schema_errors import bounded_validator_class, first_errors
from rolebook.engine.snapshot import Snapshot

SCHEMA_FILE = "check_request.schema.json"


class CheckRequestError(ValueError):
    """A body that cannot be answered; `field` names the offending part (400 over HTTP)."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.message = message
        self.field = field


@cache
def schema() -> dict:
    return json.loads(resources.files("rolebook.engine").joinpath(SCHEMA_FILE).read_text())


@cache
def _schema(role_required: bool) -> dict:
    """Offline there is no account to look the role up in, so the body must give it."""
    root = copy.deepcopy(schema())
    if role_required:
        root["properties"]["principal"]["required"] = ["id", "role"]
    return root


@cache
def _accepts(role_required: bool):
    """Yes or no in Rust; a "no" is then explained by `_validator`. Per accepted body: 1.8 µs
    against the judge's 134 µs (one resource), 21 µs against 3.8 ms (50)."""
    return fast_validator(_schema(role_required)).is_valid


@cache
def _validator(role_required: bool):
    return bounded_validator_class()(_schema(role_required))


def validate(body: object, role_required: bool = False) -> dict:
    """The body, if the schema accepts it; else CheckRequestError for its first error
    (in the schema's own order: the principal before the resources)."""
    if _accepts(role_required)(body):
        return body
    errors = first_errors(_validator(role_required), body, "$", limit=1)
    if errors:
        raise CheckRequestError(errors[0]["message"], errors[0]["field"])
    return body


def answer(snapshot: Snapshot, body: object, default_policy: str, explain: bool = False) -> dict:
    """`validate` the body, role required, then `answer_valid` it: `rolebook check`'s answer."""
    return answer_valid(snapshot, validate(body, role_required=True), default_policy, explain)


def answer_valid(snapshot: Snapshot, body: dict, default_policy: str,
                 explain: bool = False) -> dict:
    """Decide every action on every resource of a body the schema accepted, under one version.

    For callers that validated against the same schema already (the HTTP endpoint), so the
    hot path does not check a body twice.
    """
    principal, resources = body["principal"], body["resources"]
    pid, role = principal["id"], principal.get("role")
    if role is None:
        raise CheckRequestError("principal.role is required (no account lookup is available)",
                                "principal.role")
    policy = _policy(snapshot, body, default_policy)
    if explain:
        results = [{"kind": r["kind"], "id": r.get("id"),
                    "actions": _explained(policy, pid, role, r)} for r in resources]
    else:
        # One pass straight to the answer's shape (at 50 resources a third faster than
        # check_batch's Decisions, then views, then entries); the views are shared and
        # read-only (Decision.view): callers replace them, never edit.
        check, results = policy.check, []
        for r in resources:
            kind, attr, rid = r["kind"], r.get("attr"), r.get("id")
            results.append({"kind": kind, "id": rid, "actions": {
                action: check(pid, role, kind, action, attr, rid).view
                for action in r["actions"]}})
    return {
        "policy": policy.name,
        "version": policy.version,
        "digest": policy.digest,
        "principal": {"id": pid, "role": role},
        "results": results,
    }


def _policy(snapshot: Snapshot, body: dict, default_policy: str) -> Policy:
    name = body.get("policy")
    if name is None:
        name = default_policy
    if name not in snapshot.versions:
        raise CheckRequestError(f"no policy named {name!r} is loaded", "policy")
    version = body.get("policy_version")
    if isinstance(version, float):
        version = int(version)  # the schema's integer: JSON's 1.0 is the integer 1
    if version is not None and version not in snapshot.versions[name]:
        raise CheckRequestError(f"{name}@{version} is not loaded", "policy_version")
    return snapshot.get(name, version)


def _explained(policy: Policy, pid: str, role: str, resource: dict) -> dict:
    out = {}
    for action in resource["actions"]:
        decision, trace = policy.explain(
            pid, role, resource["kind"], action, resource.get("attr"), resource.get("id")
        )
        out[action] = {**decision.as_dict(), "trace": trace}
    return out
