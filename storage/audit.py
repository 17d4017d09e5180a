"""The audit trail: who changed what, when, under which policy version.

API:
    list(account_id, limit, cursor=None) -> (items, next_cursor)
        Newest first; InvalidCursor on a bad cursor. Works after the account is deleted.

Event dict: {"id", "account_id", "at", "actor", "action", "target", "before", "after",
"rule", "policy", "policy_version"}; before/after are decoded JSON (or None).
Events are written by the other repositories inside their own transactions.
"""

from __future__ import annotations

import json
from typing import Any

from pony.orm import desc, select

from rolebook.storage.base import Repository, check_limit, decode_cursor, encode_cursor, iso


def event_dict(event: Any) -> dict[str, Any]:
    return {
        "id": event.id,
        "account_id": event.account_id,
        "at": iso(event.at),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "before": None if event.before is None else json.loads(event.before),
        "after": None if event.after is None else json.loads(event.after),
        "rule": event.rule,
        "policy": event.policy,
        "policy_version": event.policy_version,
    }


class Audit(Repository):
    def list(self, account_id: str, limit: int,
             cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        check_limit(limit)
        before_id = decode_cursor("audit", cursor, int)

        def run() -> tuple[list[dict[str, Any]], str | None]:
            db = self.db
            query = select(e for e in db.AuditEvent if e.account_id == account_id)
            if before_id is not None:
                query = query.filter(lambda e: e.id < before_id)
            rows = query.order_by(lambda e: desc(e.id))[: limit + 1]
            items = [event_dict(e) for e in rows[:limit]]
            more = len(rows) > limit
            return items, encode_cursor("audit", items[-1]["id"]) if more else None

        return self._read(run)
