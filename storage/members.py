"""Members of an account: list, view, change role, remove, leave.

API:
    list(account_id, limit, cursor=None, role=None) -> (items, next_cursor)
        Keyset pagination by user id; opaque cursor; InvalidCursor on a bad cursor.
    get(account_id, user_id) -> member dict | raises NotFound
    member_facts(account_id, actor_id, target_id, owner_role) -> dict
        {"actor_role", "target_user_id", "target_role", "owner_count", "is_self"}
        for the decision endpoint; raises NotFound if the target is not a member.
    change_role(account_id, actor_id, target_id, *, new_role, owner_role, decide)
        -> member dict
        decide("member", "update_role", actor_role, facts + {"new_role"});
        audit `member.role_changed`. Setting the same role again changes nothing.
    remove(account_id, actor_id, target_id, *, owner_role, decide) -> None
        Action "leave" when actor == target, else "remove"; audit `member.left` /
        `member.removed`; releases the member's email claim.

Member dict: {"user_id", "email", "first_name", "last_name", "role", "joined_at"}.
Facts are counted under the account lock, so two holders of the owning role demoting each
other at once cannot both see another holder. Every change bumps the account's `version`.
"""

from __future__ import annotations

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
from rolebook.storage.errors import NotFound

MEMBER_FIELDS = ("user_id", "email", "first_name", "last_name", "role")


def member_dict(membership: Any) -> dict[str, Any]:
    user = membership.user
    return {
        "user_id": user.id,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "role": membership.role,
        "joined_at": iso(membership.joined_at),
    }


class Members(Repository):
    def list(self, account_id: str, limit: int, cursor: str | None = None,
             role: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        check_limit(limit)
        after = decode_cursor("members", cursor, str)

        def run() -> tuple[list[dict[str, Any]], str | None]:
            db = self.db
            if db.Account.get(id=account_id) is None:
                raise NotFound("account not found")
            # Projections, not entities: building 200 objects per page cost 6x the query.
            # The page comes from the membership index alone, then its users by primary key:
            # joined in one query, PostgreSQL's planner merge-joined the whole user table
            # from its start up to the cursor, so later pages grew with the account.
            query = select((m.user.id, m.role, m.joined_at) for m in db.Membership
                           if m.account.id == account_id)
            if role is not None:
                query = query.where("m.role == role")
            if after is not None:
                query = query.where("m.user.id > after")
            rows = query.order_by(1)[: limit + 1]
            page = rows[:limit]
            ids = [row[0] for row in page]
            people = {uid: (uid, email, first, last) for uid, email, first, last in select(
                (u.id, u.email, u.first_name, u.last_name) for u in db.User if u.id in ids)
            } if ids else {}
            items = [dict(zip(MEMBER_FIELDS, (*people[uid], member_role), strict=True),
                          joined_at=iso(joined_at)) for uid, member_role, joined_at in page]
            more = len(rows) > limit
            return items, encode_cursor("members", items[-1]["user_id"]) if more else None

        return self._read(run)

    def get(self, account_id: str, user_id: str) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            db = self.db
            membership = select(
                m for m in db.Membership if m.account.id == account_id and m.user.id == user_id
            ).prefetch(db.User).get()
            if membership is None:
                raise NotFound("member not found")
            return member_dict(membership)

        return self._read(run)

    def member_facts(self, account_id: str, actor_id: str, target_id: str,
                     owner_role: str) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            account = self.db.Account.get(id=account_id)
            if account is None:
                raise NotFound("account not found")
            actor = self._membership(account, actor_id)
            target = self._membership(account, target_id)
            if target is None:
                raise NotFound("member not found")
            return {
                "actor_role": actor.role if actor else None,
                "target_user_id": target_id,
                "target_role": target.role,
                "owner_count": self._owner_count(account, owner_role),
                "is_self": actor_id == target_id,
            }

        return dict(self._cached(account_id, ("member", actor_id, target_id, owner_role), run))

    def _pair(self, account: Any, actor_id: str, target_id: str) -> tuple[Any, Any]:
        """The acting and the target membership of a locked account."""
        actor = self._membership(account, actor_id)
        if actor is None:
            raise NotFound("account not found")
        target = actor if target_id == actor_id else self._membership(account, target_id)
        if target is None:
            raise NotFound("member not found")
        return actor, target

    def change_role(self, account_id: str, actor_id: str, target_id: str, *, new_role: str,
                    owner_role: str, decide: Decide) -> dict[str, Any]:
        def run(account: Any) -> dict[str, Any]:
            actor, target = self._pair(account, actor_id, target_id)
            facts = {
                "target_user_id": target_id,
                "target_role": target.role,
                "new_role": new_role,
                "owner_count": self._owner_count(account, owner_role),
                "is_self": actor_id == target_id,
            }
            decision = enforce(decide("member", "update_role", actor.role, facts))
            old_role = target.role
            if old_role == new_role:
                return member_dict(target)
            target.role = new_role
            account.version += 1
            self._audit(account_id, actor_id, "member.role_changed", target=target_id,
                        before={"role": old_role}, after={"role": new_role},
                        decision=decision)
            return member_dict(target)

        return self._write_account(account_id, run)

    def remove(self, account_id: str, actor_id: str, target_id: str, *, owner_role: str,
               decide: Decide) -> None:
        def run(account: Any) -> None:
            actor, target = self._pair(account, actor_id, target_id)
            is_self = actor_id == target_id
            facts = {
                "target_user_id": target_id,
                "target_role": target.role,
                "owner_count": self._owner_count(account, owner_role),
                "is_self": is_self,
            }
            action = "leave" if is_self else "remove"
            decision = enforce(decide("member", action, actor.role, facts))
            before = member_dict(target)
            claims.release_member(self.db, account_id, target_id)
            target.delete()
            account.version += 1
            self._audit(account_id, actor_id, "member.left" if is_self else "member.removed",
                        target=target_id, before=before, decision=decision)

        self._write_account(account_id, run)
