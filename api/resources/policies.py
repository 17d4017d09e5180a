"""Policy introspection and reload: what is loaded, each version's source and matrix."""

from __future__ import annotations

import falcon

from rolebook.api.access import Services
from rolebook.api.auth import ADMIN_SCOPE
from rolebook.api.problems import Problem, forbidden, not_found
from rolebook.engine import PolicyLoadError, matrix


def policy_summary(snapshot, policy) -> dict:
    return {"name": policy.name, "version": policy.version, "digest": policy.digest,
            "active": snapshot.is_active(policy), "description": policy.description.strip()}


class PolicyList:
    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req, resp):
        snapshot = self.services.policies.snapshot
        resp.media = {"snapshot_digest": snapshot.digest,
                      "default_policy": self.services.policies.default_policy,
                      "policies": [policy_summary(snapshot, p) for p in snapshot.all()]}


class PolicyVersion:
    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req, resp, name: str, version: int):
        snapshot = self.services.policies.snapshot
        try:
            policy = snapshot.get(name, version)
        except KeyError:
            raise not_found(f"no policy {name}@{version} is loaded") from None
        resp.media = {**policy_summary(snapshot, policy), "roles": list(policy.roles),
                      "membership": _membership(policy), "source": policy.source,
                      "matrix": matrix.table(policy)}


def _membership(policy) -> dict:
    m = policy.membership
    return {"owner_role": m.owner_role, "min_owners": m.min_owners,
            "email_accounts": m.email_accounts, "invitation_ttl_hours": m.invitation_ttl_hours,
            "invitation_requires_names": m.invitation_requires_names}


class PolicyReload:
    def __init__(self, services: Services):
        self.services = services

    def on_post(self, req, resp):
        if not req.context.caller.has(ADMIN_SCOPE):
            raise forbidden(None, "reloading policies needs the 'admin' scope")
        try:
            snapshot = self.services.policies.reload()
        except PolicyLoadError as exc:
            self.services.metrics.reloads.labels("failure").inc()
            raise Problem(422, "policy-invalid", "Policy reload failed",
                          f"{exc}; the running policies keep serving",
                          errors=[p.as_dict() for p in exc.problems]) from None
        self.services.metrics.reloads.labels("success").inc()
        resp.status = falcon.HTTP_200
        resp.media = {"snapshot_digest": snapshot.digest,
                      "policies": [policy_summary(snapshot, p) for p in snapshot.all()]}
