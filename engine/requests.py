"""Answer one `/v1/check` body: the single code path behind `rolebook check` and the HTTP endpoint.

Both callers hand over the same dict, so an offline answer and a served one
can never disagree. The HTTP layer fills `principal.role` (and stored facts)
before calling; offline there is no storage, so the role must be given.
"""

from __future__ import annotations

from rolebook.engine.snapshot import Snapshot


class RequestError(ValueError):
    """A body this function cannot answer; `field` names the offending part (400 over HTTP)."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.message = message
        self.field = field


def answer(snapshot: Snapshot, body: dict, default_policy: str, explain: bool = False) -> dict:
    """Decide every action on every resource in `body` under one policy version."""
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object", "$")
    pid, role = _principal(body.get("principal"))
    policy = _policy(snapshot, body, default_policy)
    resources = _resources(body.get("resources"))
    if explain:
        decided = [_explained(policy, pid, role, r) for r in resources]
    else:
        decided = [  # shared, read-only views (Decision.view): callers replace, never edit
            {action: d.view for action, d in actions.items()}
            for actions in policy.check_batch(pid, role, resources)
        ]
    return {
        "policy": policy.name,
        "version": policy.version,
        "digest": policy.digest,
        "principal": {"id": pid, "role": role},
        "results": [
            {"kind": r["kind"], "id": r.get("id"), "actions": actions}
            for r, actions in zip(resources, decided, strict=True)
        ],
    }


def _principal(principal: object) -> tuple[str, str]:
    if not isinstance(principal, dict):
        raise RequestError("principal must be an object with id and role", "principal")
    pid, role = principal.get("id"), principal.get("role")
    if not isinstance(pid, str) or not pid:
        raise RequestError("principal.id must be a non-empty string", "principal.id")
    if role is None:
        raise RequestError("principal.role is required (no account lookup is available)",
                           "principal.role")
    if not isinstance(role, str):
        raise RequestError("principal.role must be a string", "principal.role")
    return pid, role


def _policy(snapshot: Snapshot, body: dict, default_policy: str):
    name = body.get("policy")
    if name is None:
        name = default_policy
    if not isinstance(name, str) or name not in snapshot.versions:
        raise RequestError(f"no policy named {name!r} is loaded", "policy")
    version = body.get("policy_version")
    if isinstance(version, float) and version.is_integer():
        version = int(version)  # JSON's 1.0 is the integer 1 (JSON Schema agrees)
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise RequestError("policy_version must be an integer", "policy_version")
    if version is not None and version not in snapshot.versions[name]:
        raise RequestError(f"{name}@{version} is not loaded", "policy_version")
    return snapshot.get(name, version)


def _resources(resources: object) -> list[dict]:
    """Each resource well formed; one pass, and the error's path is built only for an error."""
    if not isinstance(resources, list) or not resources:
        raise RequestError("resources must be a non-empty array", "resources")
    only_str = {str}
    for i, r in enumerate(resources):
        if not isinstance(r, dict):
            raise RequestError("each resource must be an object", f"resources[{i}]")
        if not isinstance(r.get("kind"), str):
            raise RequestError("kind must be a string", f"resources[{i}].kind")
        rid = r.get("id")
        if rid is not None and not isinstance(rid, str | int):
            raise RequestError("id must be a string", f"resources[{i}].id")
        attr = r.get("attr")
        if attr is not None and not isinstance(attr, dict):
            raise RequestError("attr must be an object", f"resources[{i}].attr")
        actions = r.get("actions")
        if not isinstance(actions, list) or not actions or set(map(type, actions)) != only_str:
            raise RequestError("actions must be a non-empty array of strings",
                               f"resources[{i}].actions")
    return resources


def _explained(policy, pid: str, role: str, resource: dict) -> dict:
    out = {}
    for action in resource["actions"]:
        decision, trace = policy.explain(
            pid, role, resource["kind"], action, resource.get("attr"), resource.get("id")
        )
        out[action] = {**decision.as_dict(), "trace": trace}
    return out
