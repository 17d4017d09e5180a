"""Members: list (paginated, filter by role), view, change a role, remove or leave.

Every change goes to storage with the `decider`: storage locks the account,
gathers the facts (target role, new role, how many hold the owning role, is-self) and asks the
policy inside its transaction; a denial becomes 403 naming the rule, a broken
invariant (the policy marks it `conflict`) 409. Role names come only from the
account's policy.
"""

from __future__ import annotations

import falcon

from rolebook.api import contract
from rolebook.api.account_lookup import AccountAccess, account_access
from rolebook.api.decisions import decider, require
from rolebook.api.pagination import listing, page_params
from rolebook.api.problems import bad_request
from rolebook.api.services import Services


def known_role(access: AccountAccess, role: str, field: str) -> str:
    """The role if the account's policy defines it; otherwise 400 naming the field."""
    roles = access.policy.roles
    if role not in roles:
        raise bad_request(f"{field}: {role!r} is not a role of policy {access.policy.ref} "
                          f"(one of {', '.join(roles)})",
                          [{"field": field, "message": f"one of {', '.join(roles)}"}])
    return role


class Members:
    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, account_id: str) -> None:
        caller = req.context.caller
        access = account_access(self.services, account_id, caller)
        require(self.services, access, caller, "member", "list", resource_id=account_id)
        limit, cursor = page_params(req)
        role = req.get_param("role")
        if role is not None:
            known_role(access, role, "role")
        items, next_cursor = listing(self.services.store.members.list,
                                     account_id, limit, cursor, role=role)
        resp.media = {"items": items, "next_cursor": next_cursor}


class Member:
    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, account_id: str,
               user_id: str) -> None:
        caller = req.context.caller
        access = account_access(self.services, account_id, caller)
        store = self.services.store
        # The facts the decision endpoint would fill for this member (404 if not one).
        facts = store.members.member_facts(account_id, caller.id, user_id,
                                           access.policy.membership.owner_role)
        facts.pop("actor_role", None)
        require(self.services, access, caller, "member", "view", facts, resource_id=user_id)
        resp.media = store.members.get(account_id, user_id)

    def on_patch(self, req: falcon.Request, resp: falcon.Response, account_id: str,
                 user_id: str) -> None:
        caller = req.context.caller
        access = account_access(self.services, account_id, caller)
        body = contract.body(req, "MemberUpdate")
        new_role = known_role(access, body["role"], "role")
        resp.media = self.services.store.members.change_role(
            account_id, caller.id, user_id, new_role=new_role,
            owner_role=access.policy.membership.owner_role,
            decide=decider(self.services, access, caller, user_id))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, account_id: str,
                  user_id: str) -> None:
        caller = req.context.caller
        access = account_access(self.services, account_id, caller)
        self.services.store.members.remove(
            account_id, caller.id, user_id, owner_role=access.policy.membership.owner_role,
            decide=decider(self.services, access, caller, user_id))
        resp.status = falcon.HTTP_204
