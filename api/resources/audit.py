"""The audit trail of an account, newest first; who may read it is the policy's `audit.view`."""

from __future__ import annotations

import falcon

from rolebook.api.account_lookup import account_access
from rolebook.api.decisions import require
from rolebook.api.pagination import listing, page_params
from rolebook.api.services import Services


class AuditLog:
    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, account_id: str) -> None:
        caller = req.context.caller
        access = account_access(self.services, account_id, caller)
        require(self.services, access, caller, "audit", "view", resource_id=account_id)
        limit, cursor = page_params(req)
        items, next_cursor = listing(self.services.store.audit.list, account_id, limit, cursor)
        resp.media = {"items": items, "next_cursor": next_cursor}
