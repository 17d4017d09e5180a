"""Policy introspection and reload: what is loaded, each version's source and matrix."""

from __future__ import annotations

import falcon

from rolebook.api.auth import ADMIN_SCOPE
from rolebook.api.problems import Problem, forbidden, not_found
from rolebook.api.services import Services
from rolebook.api.worker_board import CONFIRM_SECONDS, reload_here
from rolebook.engine import matrix


def policy_summary(snapshot, policy) -> dict:
    return {"name": policy.name, "version": policy.version, "digest": policy.digest,
            "active": snapshot.is_active(policy), "description": policy.description.strip()}


class PolicyList:
    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req, resp):
        policies = self.services.policies
        snapshot = policies.snapshot
        resp.media = {"snapshot_digest": snapshot.digest,
                      "default_policy": policies.default_policy,
                      "source": policies.source.kind,
                      "load_errors": [] if policies.last_error is None else
                      [p.as_dict() for p in policies.last_error.problems],
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
    """Reloads every worker process of this replica, not only the one the request reached."""

    def __init__(self, services: Services):
        self.services = services

    def on_post(self, req, resp):
        if not req.context.caller.has(ADMIN_SCOPE):
            raise forbidden(None, "reloading policies needs the 'admin' scope")
        before = self.services.policies.snapshot.digest
        board = self.services.board
        if board is None:  # this process alone, as in the in-process tests
            workers, complete = [reload_here(self.services)], True
        else:
            workers, complete = board.reload_everywhere()
        shown = [_worker(w) for w in workers]
        failed = next((w for w in workers if w["error"]), None)
        if failed:
            raise Problem(422, "policy-invalid", "Policy reload failed",
                          f"{failed['error']}; the running policies keep serving",
                          errors=failed["errors"], workers=shown)
        if not complete:
            raise Problem(503, "reload-unconfirmed", "Reload not confirmed",
                          f"not every worker process confirmed the reload within "
                          f"{CONFIRM_SECONDS:g} s; each one listed says what it serves",
                          workers=shown)
        snapshot = self.services.policies.snapshot
        self.services.store.policies.record_reload(req.context.caller.id, before, snapshot.digest)
        resp.status = falcon.HTTP_200
        resp.media = {"snapshot_digest": snapshot.digest,
                      "policies": [policy_summary(snapshot, p) for p in snapshot.all()],
                      "workers": shown}


def _worker(entry: dict) -> dict:
    shown = {k: entry[k] for k in ("pid", "snapshot_digest", "active")}
    if entry["error"]:
        shown["error"] = entry["error"]
    return shown


class PolicyEvents:
    """The fleet's policy audit trail: publications, activations and reloads, newest first."""

    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req, resp):
        if not req.context.caller.has(ADMIN_SCOPE):
            raise forbidden(None, "the policy audit trail needs the 'admin' scope")
        limit = req.get_param_as_int("limit", default=50)
        resp.media = {"items": self.services.store.policies.fleet_events(limit)}


class PolicyActivate:
    """Make a published version the active one on every replica serving the database."""

    def __init__(self, services: Services):
        self.services = services

    def on_post(self, req, resp, name: str, version: int):
        caller = req.context.caller
        if not caller.has(ADMIN_SCOPE):
            raise forbidden(None, "activating a policy version needs the 'admin' scope")
        policies = self.services.policies
        if policies.source.kind != "database":
            raise Problem(409, "policy-source", "Not serving published policies",
                          "this replica serves its policy folder (policy source 'dir'); "
                          "activation applies to replicas started with --policy-source "
                          "database, and nothing was changed")
        activation = self.services.store.policies.activate(name, version, caller.id)
        policies.refresh()  # this worker now; the others through the database's change feed
        resp.media = {**activation, "snapshot_digest": policies.snapshot.digest}
