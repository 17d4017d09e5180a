"""Accounts and the caller's place in them.

API:
    create(actor_id, actor_email, *, name, policy, owner_role, policy_version=None,
           single_email_scope=False, per_user_per_hour=None, decision_info=None)
        -> account dict
        The creator becomes the first member with `owner_role`; audit `account.created`.
        With single_email_scope the creator's email is claimed (Conflict if taken).
        RateLimited once the creator made `per_user_per_hour` accounts in the last hour.
    get(account_id) -> account dict | raises NotFound
    access(account_id, user_id) -> (account dict, role | None) | raises NotFound
        One query for the request path: the account and the caller's role in it;
        from the account cache, when the Store has one, while the account is unchanged.
    list_for_user(user_id, limit, cursor=None) -> (items, next_cursor)
        items: account dict plus "role"; ordered by account id; InvalidCursor on a bad cursor.
    role_of(account_id, user_id) -> str | None        (one indexed query)
    facts(account_id, owner_role) -> {"owner_count": int} | raises NotFound
    delete(account_id, actor_id, *, owner_role, decide) -> None
        Asks decide("account", "delete", role, {"owner_count"}) with the role read under
        the lock. Drops members, invitations, claims and
        unsent invitation mail; the audit trail stays (audit `account.deleted`).

Account dict: {"id", "name", "policy", "policy_version" (int | None), "created_at",
"created_by", "version"}; `version` grows with every membership change.
"""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timedelta
from typing import Any

from pony.orm import select

from rolebook.storage import claims
from rolebook.storage.base import (
    Decide,
    Repository,
    check_limit,
    decode_cursor,
    encode_cursor,
    enforce,
    iso,
)
from rolebook.storage.errors import NotFound, RateLimited
from rolebook.storage.users import Users, upsert

ACCOUNT_FIELDS = ("id", "name", "policy", "policy_version", "created_at", "created_by",
                  "version")


def account_dict(account: Any) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "policy": account.policy,
        "policy_version": account.policy_version,
        "created_at": iso(account.created_at),
        "created_by": account.created_by,
        "version": account.version,
    }


def new_account_id() -> str:
    return "acc_" + secrets.token_hex(8)


class Accounts(Repository):
    def create(self, actor_id: str, actor_email: str, *, name: str, policy: str,
               owner_role: str, policy_version: int | None = None,
               single_email_scope: bool = False, per_user_per_hour: int | None = None,
               decision_info: Any = None) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            db, now = self.db, self.now()
            self._limit_creations(actor_id, per_user_per_hour, now)
            user = upsert(db, actor_id, actor_email)
            account = db.Account(id=new_account_id(), name=name, policy=policy,
                                 policy_version=policy_version, created_at=now,
                                 created_by=actor_id, version=1)
            db.Membership(account=account, user=user, role=owner_role, joined_at=now)
            if single_email_scope:
                claims.bind(db, policy, user.email_lower, account.id, actor_id)
            result = account_dict(account)
            self._audit(account.id, actor_id, "account.created", target=account.id,
                        after={"name": name, "policy": policy,
                               "policy_version": policy_version, "created_by": actor_id},
                        decision=decision_info, policy=policy, policy_version=policy_version)
            return result

        # The user row first, in its own transaction: a twin first request cannot then
        # turn this creation into a Conflict.
        Users(self.db, self.now).ensure(actor_id, actor_email)
        return self._write(run)

    def _limit_creations(self, actor_id: str, per_hour: int | None, now: datetime) -> None:
        """RateLimited once `actor_id` created `per_hour` accounts in the last hour: each new
        account could otherwise send its own quota of invitation mail."""
        if per_hour is None:
            return
        since = now - timedelta(hours=1)
        times = sorted(select(
            e.at for e in self.db.AuditEvent
            if e.actor == actor_id and e.action == "account.created" and e.at > since
        ).without_distinct())
        if len(times) >= per_hour:
            frees_at = times[len(times) - per_hour] + timedelta(hours=1) if per_hour > 0 \
                else now + timedelta(hours=1)
            raise RateLimited(max(1, math.ceil((frees_at - now).total_seconds())))

    def get(self, account_id: str) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            account = self.db.Account.get(id=account_id)
            if account is None:
                raise NotFound("account not found")
            return account_dict(account)

        return self._read(run)

    def access(self, account_id: str, user_id: str) -> tuple[dict[str, Any], str | None]:
        def run() -> tuple[dict[str, Any], str | None]:
            db = self.db
            rows = select(
                (a.id, a.name, a.policy, a.policy_version, a.created_at, a.created_by,
                 a.version, m.role)
                for a in db.Account for m in db.Membership
                if a.id == account_id and m.account == a and m.user.id == user_id
            ).without_distinct()[:1]
            if rows:
                *values, role = rows[0]
                found = dict(zip(ACCOUNT_FIELDS, values, strict=True))
                return dict(found, created_at=iso(found["created_at"])), role
            account = db.Account.get(id=account_id)
            if account is None:
                raise NotFound("account not found")
            return account_dict(account), None

        account, role = self._cached(account_id, ("access", user_id), run)
        return dict(account), role

    def list_for_user(self, user_id: str, limit: int,
                      cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        check_limit(limit)
        after = decode_cursor("accounts", cursor, str)

        def run() -> tuple[list[dict[str, Any]], str | None]:
            db = self.db
            query = select((m.account, m.role) for m in db.Membership if m.user.id == user_id)
            if after is not None:
                query = query.filter(lambda a, r: a.id > after)
            rows = query.order_by(lambda a, r: a.id)[: limit + 1]
            items = [dict(account_dict(a), role=r) for a, r in rows[:limit]]
            more = len(rows) > limit
            return items, encode_cursor("accounts", items[-1]["id"]) if more else None

        return self._read(run)

    def role_of(self, account_id: str, user_id: str) -> str | None:
        def run() -> str | None:
            db = self.db
            return select(
                m.role for m in db.Membership
                if m.account.id == account_id and m.user.id == user_id
            ).get()

        return self._read(run)

    def facts(self, account_id: str, owner_role: str) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            account = self.db.Account.get(id=account_id)
            if account is None:
                raise NotFound("account not found")
            return {"owner_count": self._owner_count(account, owner_role)}

        return dict(self._cached(account_id, ("facts", owner_role), run))

    def delete(self, account_id: str, actor_id: str, *, owner_role: str,
               decide: Decide) -> None:
        def run(account: Any) -> None:
            db = self.db
            actor = self._membership(account, actor_id)
            if actor is None:
                raise NotFound("account not found")
            facts = {"owner_count": self._owner_count(account, owner_role)}
            decision = enforce(decide("account", "delete", actor.role, facts))
            before = account_dict(account)
            invitation_ids = list(select(i.id for i in db.Invitation if i.account == account))
            if invitation_ids:
                db.Outbox.select(
                    lambda o: o.invitation_id in invitation_ids and o.status == "pending"
                ).delete(bulk=True)
            claims.release_account(db, account_id)
            db.Invitation.select(lambda i: i.account == account).delete(bulk=True)
            db.Membership.select(lambda m: m.account == account).delete(bulk=True)
            account.delete()
            self._audit(account_id, actor_id, "account.deleted", target=account_id,
                        before=before, decision=decision)

        self._write_account(account_id, run)
