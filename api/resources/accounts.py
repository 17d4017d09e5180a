"""Accounts: create (the caller takes the policy's owning role), list yours, view, delete,
permissions."""

from __future__ import annotations

import falcon

from rolebook.api import contract
from rolebook.api.account_lookup import account_access
from rolebook.api.decisions import decider, require
from rolebook.api.pagination import listing, page_params
from rolebook.api.problems import bad_request
from rolebook.api.services import Services
from rolebook.engine.matrix import cell
from rolebook.engine.vocabulary import SERVICE_KINDS


def account_view(account: dict, role: str | None, policy) -> dict:
    return {**account, "role": role, "effective_policy_version": policy.version if policy else None}


class Accounts:
    def __init__(self, services: Services):
        self.services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        caller = req.context.caller
        body = contract.body(req, "AccountCreate")
        policies = self.services.policies
        name = body.get("policy", policies.default_policy)
        version = body.get("policy_version")
        if isinstance(version, float):  # JSON Schema's integers include 1.0; storage wants 1
            version = int(version)
        try:
            policy = policies.snapshot.get(name, version)
        except KeyError:
            ref = name if version is None else f"{name}@{version}"
            raise bad_request(f"no policy {ref} is loaded",
                              [{"field": "policy_version" if version else "policy",
                                "message": "not loaded"}]) from None
        account = self.services.store.accounts.create(
            caller.id, caller.email, name=body["name"], policy=name, policy_version=version,
            owner_role=policy.membership.owner_role,
            single_email_scope=policy.membership.single_email_scope,
            per_user_per_hour=self.services.config.accounts_per_user_per_hour,
            decision_info={"rule": None, "policy": name, "version": policy.version})
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/accounts/{account['id']}"
        resp.media = account_view(account, policy.membership.owner_role, policy)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit, cursor = page_params(req)
        items, next_cursor = listing(self.services.store.accounts.list_for_user,
                                     req.context.caller.id, limit, cursor)
        policies = self.services.policies
        snapshot = policies.snapshot  # once: every item from the same set
        resp.media = {"items": [account_view(a, a["role"], policies.for_account(a, snapshot))
                                for a in items], "next_cursor": next_cursor}


class Account:
    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req, resp, account_id: str) -> None:
        caller = req.context.caller
        access = account_access(self.services, account_id, caller)
        require(self.services, access, caller, "account", "view", resource_id=account_id)
        resp.media = account_view(access.account, access.role, access.policy)

    def on_delete(self, req, resp, account_id: str) -> None:
        caller = req.context.caller
        access = account_access(self.services, account_id, caller)
        self.services.store.accounts.delete(
            account_id, caller.id, owner_role=access.policy.membership.owner_role,
            decide=decider(self.services, access, caller, account_id))
        resp.status = falcon.HTTP_204


class Permissions:
    """Every action the caller may take, for UIs to show or hide buttons.

    `conditional` means the answer depends on the target (e.g. its role), so
    the UI should ask /v1/check with that resource before offering the action.
    """

    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req, resp, account_id: str) -> None:
        access = account_access(self.services, account_id, req.context.caller)
        policy, role = access.policy, access.role
        permissions = {}
        for kind, actions in policy.kinds.items():
            permissions[kind] = {a: cell(policy.plans[(kind, a, role)])["effect"]
                                 for a in actions}
        resp.media = {"account_id": account_id, "role": role, "policy": policy.name,
                      "policy_version": policy.version, "digest": policy.digest,
                      "service_kinds": sorted(SERVICE_KINDS), "permissions": permissions}
