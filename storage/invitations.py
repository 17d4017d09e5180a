"""Invitations: create, list, view, resend, revoke, accept.

API:
    create(account_id, actor_id, *, email, role, rules, decide, make_message,
           first_name=None, last_name=None) -> (invitation dict, token)
        decide("invitation", "create", actor_role, {"role"}). Conflict if the email is a
        member here, has a live invitation here, or (rules.single_email_scope) belongs to a
        member of another account of the same policy (pending invitations elsewhere do
        not count: storage.claims). RateLimited when invitations created plus resent in
        the last hour reach `rules.per_account_per_hour` in this account or
        `rules.per_user_per_hour` by this actor in all accounts (None: no limit).
        `make_message(invitation_dict, token) -> (to, subject, text, html)` is queued in
        the outbox in the same transaction.
    list(account_id, limit, cursor=None, status=None) -> (items, next_cursor)
        Newest first; status in pending/accepted/expired/revoked; InvalidCursor on a bad cursor.
    get(account_id, invitation_id) -> invitation dict | raises NotFound
    resend(account_id, actor_id, invitation_id, *, rules, decide, make_message)
        -> (invitation dict, token)
        Pending or expired only (else Gone); new token (the old one dies), new expiry,
        unsent mail for the old token dropped, new outbox row; audit `invitation.resent`.
    revoke(account_id, actor_id, invitation_id, *, decide) -> invitation dict
        Pending or expired only (else Gone).
    preview(token) -> {"account": {"id", "name"}, "invitation": invitation dict}
        Read-only look-up by token hash for the accept page: NotFound for an unknown
        (or replaced) token; any status is returned, nothing is consumed or written.
    accept(token, user_id, user_email, *, single_email_scope=None)
        -> {"account", "member", "invitation"}
        NotFound for an unknown token; Gone if used, revoked or expired; WrongUser (a
        Denied, 403) if the user's email differs case-insensitively (the invitation stays
        usable); Conflict if already a member, or if `single_email_scope(account dict)`
        and the address belongs to another account's member (storage.claims: only an
        accepted membership binds an address). Audit `invitation.accepted`.

Invitation dict: {"id", "account_id", "email", "role", "first_name", "last_name",
"status" (pending/accepted/expired/revoked; expired = pending past expires_at),
"expires_at", "created_at", "invited_by", "accepted_by", "accepted_at", "revoked_at",
"delivery_status" (queued/sent/failed), "delivery_attempts", "last_error"}.
Only sha256(token) is stored; tokens are compared with hmac.compare_digest.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from pony.orm import desc, select

from rolebook.storage import claims
from rolebook.storage.accounts import account_dict
from rolebook.storage.base import (
    Decide,
    Repository,
    check_limit,
    decode_cursor,
    encode_cursor,
    enforce,
    iso,
)
from rolebook.storage.errors import Conflict, Gone, NotFound, RateLimited, WrongUser
from rolebook.storage.members import member_dict
from rolebook.storage.users import Users, upsert

MakeMessage = Callable[[dict[str, Any], str], tuple[str, str, str, str | None]]


@dataclass(frozen=True)
class InvitationRules:
    """What governs an account's invitations: its policy's membership settings (validity,
    one account per address) and the service's limits, counted over the last hour in the
    database: per account, and per inviting user across all of their accounts (three
    accounts once sent 150 mails in 1.9 s, each under its own account's limit)."""

    ttl_seconds: int
    single_email_scope: bool = False
    per_account_per_hour: int | None = None
    per_user_per_hour: int | None = None
STATUSES = ("pending", "accepted", "expired", "revoked")
SENDS = ("invitation.created", "invitation.resent")
WINDOW = timedelta(hours=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def effective_status(invitation: Any, now: datetime) -> str:
    if invitation.status == "pending" and invitation.expires_at <= now:
        return "expired"
    return invitation.status


def invitation_dict(invitation: Any, now: datetime) -> dict[str, Any]:
    return {
        "id": invitation.id,
        "account_id": invitation.account.id,
        "email": invitation.email,
        "role": invitation.role,
        "first_name": invitation.first_name,
        "last_name": invitation.last_name,
        "status": effective_status(invitation, now),
        "expires_at": iso(invitation.expires_at),
        "created_at": iso(invitation.created_at),
        "invited_by": invitation.invited_by,
        "accepted_by": invitation.accepted_by,
        "accepted_at": iso(invitation.accepted_at),
        "revoked_at": iso(invitation.revoked_at),
        "delivery_status": invitation.delivery_status,
        "delivery_attempts": invitation.delivery_attempts,
        "last_error": invitation.last_error,
    }


class Invitations(Repository):
    # ---- reads -------------------------------------------------------------------------

    def list(self, account_id: str, limit: int, cursor: str | None = None,
             status: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        check_limit(limit)
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        after = decode_cursor("invitations", cursor)
        after_at: datetime | None = None
        after_id: str | None = None
        if after is not None:
            try:
                after_at, after_id = datetime.fromisoformat(after[0]), str(after[1])
            except (TypeError, ValueError, IndexError, KeyError) as e:
                raise ValueError("invalid cursor") from e

        def run() -> tuple[list[dict[str, Any]], str | None]:
            db, now = self.db, self.now()
            if db.Account.get(id=account_id) is None:
                raise NotFound("account not found")
            query = select(i for i in db.Invitation if i.account.id == account_id)
            if status == "pending":
                query = query.filter(lambda i: i.status == "pending" and i.expires_at > now)
            elif status == "expired":
                query = query.filter(lambda i: i.status == "pending" and i.expires_at <= now)
            elif status is not None:
                query = query.filter(lambda i: i.status == status)
            if after is not None:
                query = query.filter(lambda i: i.created_at < after_at or (
                    i.created_at == after_at and i.id < after_id))
            rows = query.order_by(lambda i: (desc(i.created_at), desc(i.id)))[: limit + 1]
            items = [invitation_dict(i, now) for i in rows[:limit]]
            if len(rows) <= limit:
                return items, None
            last = rows[limit - 1]
            return items, encode_cursor("invitations", [last.created_at.isoformat(), last.id])

        return self._read(run)

    def get(self, account_id: str, invitation_id: str) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            invitation = self.db.Invitation.get(id=invitation_id)
            if invitation is None or invitation.account.id != account_id:
                raise NotFound("invitation not found")
            return invitation_dict(invitation, self.now())

        return self._read(run)

    # ---- writes ------------------------------------------------------------------------

    def create(self, account_id: str, actor_id: str, *, email: str, role: str,
               rules: InvitationRules, decide: Decide, make_message: MakeMessage,
               first_name: str | None = None,
               last_name: str | None = None) -> tuple[dict[str, Any], str]:
        def run(account: Any) -> tuple[dict[str, Any], str]:
            db, now = self.db, self.now()
            actor = self._membership(account, actor_id)
            if actor is None:
                raise NotFound("account not found")
            decision = enforce(decide("invitation", "create", actor.role, {"role": role}))
            email_lower = email.lower()
            self._refuse_duplicates(account, email_lower, None, now)
            self._rate_limit(account_id, actor_id, rules, now)
            token = secrets.token_urlsafe(32)
            values = {
                "id": "inv_" + secrets.token_hex(8), "email": email, "email_lower": email_lower,
                "role": role, "first_name": first_name, "last_name": last_name,
                "token_hash": hash_token(token), "status": "pending",
                "expires_at": now + timedelta(seconds=rules.ttl_seconds),
                "invited_by": actor_id,
                "created_at": now, "delivery_status": "queued", "delivery_attempts": 0}
            if rules.single_email_scope:
                claims.refuse_if_taken(db, account.policy, email_lower, account_id)
            db.Invitation(account=account, **values)
            # Built from the values: reading the fresh entity would make Pony reload it.
            result = invitation_dict(SimpleNamespace(
                account=account, accepted_by=None, accepted_at=None, revoked_at=None,
                last_error=None, **values), now)
            self._audit(account_id, actor_id, "invitation.created", target=values["id"],
                        after={"email": email, "role": role}, decision=decision)
            self._queue(result, token, make_message, now)
            return result, token

        return self._write_account(account_id, run)

    def resend(self, account_id: str, actor_id: str, invitation_id: str, *,
               rules: InvitationRules, decide: Decide,
               make_message: MakeMessage) -> tuple[dict[str, Any], str]:
        def run(account: Any) -> tuple[dict[str, Any], str]:
            db, now = self.db, self.now()
            actor, invitation = self._actor_and_invitation(account, actor_id, invitation_id)
            decision = enforce(decide("invitation", "resend", actor.role,
                                      {"role": invitation.role}))
            before = effective_status(invitation, now)
            if invitation.status != "pending":
                raise Gone(f"invitation already {invitation.status}")
            self._refuse_duplicates(account, invitation.email_lower, invitation.id, now)
            if rules.single_email_scope:
                claims.refuse_if_taken(db, account.policy, invitation.email_lower, account_id)
            self._rate_limit(account_id, actor_id, rules, now)
            token = secrets.token_urlsafe(32)
            invitation.token_hash = hash_token(token)
            invitation.expires_at = now + timedelta(seconds=rules.ttl_seconds)
            invitation.delivery_status = "queued"
            invitation.delivery_attempts = 0
            invitation.last_error = None
            self._drop_unsent(invitation.id)
            result = invitation_dict(invitation, now)
            self._audit(account_id, actor_id, "invitation.resent", target=invitation.id,
                        before={"status": before}, after={"expires_at": result["expires_at"]},
                        decision=decision)
            self._queue(result, token, make_message, now)
            return result, token

        return self._write_account(account_id, run)

    def revoke(self, account_id: str, actor_id: str, invitation_id: str, *,
               decide: Decide) -> dict[str, Any]:
        def run(account: Any) -> dict[str, Any]:
            now = self.now()
            actor, invitation = self._actor_and_invitation(account, actor_id, invitation_id)
            decision = enforce(decide("invitation", "revoke", actor.role,
                                      {"role": invitation.role}))
            before = effective_status(invitation, now)
            if invitation.status != "pending":
                raise Gone(f"invitation already {invitation.status}")
            invitation.status = "revoked"
            invitation.revoked_at = now
            self._drop_unsent(invitation.id)
            self._audit(account_id, actor_id, "invitation.revoked", target=invitation.id,
                        before={"status": before}, after={"status": "revoked"},
                        decision=decision)
            return invitation_dict(invitation, now)

        return self._write_account(account_id, run)

    def preview(self, token: str) -> dict[str, Any]:
        """What an accept link stands for, without consuming it (nothing is written)."""
        token_hash = hash_token(token)

        def run() -> dict[str, Any]:
            invitation = self.db.Invitation.get(token_hash=token_hash)
            if invitation is None or not hmac.compare_digest(invitation.token_hash, token_hash):
                raise NotFound("invitation not found")
            account = invitation.account
            return {"account": {"id": account.id, "name": account.name},
                    "invitation": invitation_dict(invitation, self.now())}

        return self._read(run)

    def accept(self, token: str, user_id: str, user_email: str, *,
               single_email_scope: Callable[[dict[str, Any]], bool] | None = None,
               ) -> dict[str, Any]:
        token_hash = hash_token(token)

        def find() -> tuple[str, str]:
            invitation = self.db.Invitation.get(token_hash=token_hash)
            if invitation is None or not hmac.compare_digest(invitation.token_hash, token_hash):
                raise NotFound("invitation not found")
            return invitation.id, invitation.account.id

        invitation_id, account_id = self._read(find)
        Users(self.db, self.now).ensure(user_id, user_email)

        def run(account: Any) -> dict[str, Any]:
            db, now = self.db, self.now()
            invitation = db.Invitation.get(id=invitation_id)
            if invitation is None or not hmac.compare_digest(invitation.token_hash, token_hash):
                raise Gone("this invitation link was replaced or withdrawn")
            status = effective_status(invitation, now)
            if status != "pending":
                raise Gone({"accepted": "invitation already used"}.get(
                    status, f"invitation {status}"))
            if invitation.email_lower != user_email.lower():
                raise WrongUser()
            user = upsert(db, user_id, user_email)
            if self._membership(account, user_id) is not None:
                raise Conflict("already a member of this account")
            if user.first_name is None and user.last_name is None:
                user.first_name, user.last_name = invitation.first_name, invitation.last_name
            membership = db.Membership(account=account, user=user, role=invitation.role,
                                       joined_at=now)
            if single_email_scope is not None and single_email_scope(account_dict(account)):
                claims.bind(db, account.policy, invitation.email_lower, account_id, user_id)
            invitation.status = "accepted"
            invitation.accepted_by = user_id
            invitation.accepted_at = now
            account.version += 1
            self._audit(account_id, user_id, "invitation.accepted", target=invitation.id,
                        before={"status": "pending"},
                        after={"status": "accepted", "user_id": user_id,
                               "role": invitation.role},
                        policy=account.policy, policy_version=account.policy_version)
            return {"account": account_dict(account), "member": member_dict(membership),
                    "invitation": invitation_dict(invitation, now)}

        try:
            return self._write_account(account_id, run)
        except NotFound:  # the account went away since the token was looked up
            raise Gone("the account of this invitation no longer exists") from None

    # ---- helpers (inside the caller's transaction) -----------------------------------

    def _actor_and_invitation(self, account: Any, actor_id: str,
                              invitation_id: str) -> tuple[Any, Any]:
        actor = self._membership(account, actor_id)
        if actor is None:
            raise NotFound("account not found")
        invitation = self.db.Invitation.get(id=invitation_id)
        if invitation is None or invitation.account != account:
            raise NotFound("invitation not found")
        return actor, invitation

    def _refuse_duplicates(self, account: Any, email_lower: str, keep_id: str | None,
                           now: datetime) -> None:
        db = self.db
        if select(m for m in db.Membership
                  if m.account == account and m.user.email_lower == email_lower).exists():
            raise Conflict("this email address is already a member of the account")
        if select(i for i in db.Invitation
                  if i.account == account and i.email_lower == email_lower
                  and i.status == "pending" and i.expires_at > now and i.id != keep_id).exists():
            raise Conflict("this email address already has a pending invitation")

    def _rate_limit(self, account_id: str, actor_id: str, rules: InvitationRules,
                    now: datetime) -> None:
        """RateLimited (with the seconds until a send is free) when this account, or this
        user across all of theirs, sent `per_*_per_hour` invitations in the last hour."""
        since = now - WINDOW
        events = self.db.AuditEvent
        for per_hour, sent in (
                (rules.per_account_per_hour, lambda: select(
                    e.at for e in events
                    if e.account_id == account_id and e.action in SENDS and e.at > since)),
                (rules.per_user_per_hour, lambda: select(
                    e.at for e in events
                    if e.actor == actor_id and e.action in SENDS and e.at > since))):
            if per_hour is None:
                continue
            times = sorted(sent().without_distinct())
            if len(times) < per_hour:
                continue
            frees_at = times[len(times) - per_hour] + WINDOW if per_hour > 0 else now + WINDOW
            raise RateLimited(max(1, math.ceil((frees_at - now).total_seconds())))

    def _drop_unsent(self, invitation_id: str) -> None:
        """Unsent mail for a dead token would only confuse its reader."""
        self.db.Outbox.select(
            lambda o: o.invitation_id == invitation_id and o.status == "pending"
        ).delete(bulk=True)

    def _queue(self, invitation: dict[str, Any], token: str, make_message: MakeMessage,
               now: datetime) -> None:
        to, subject, text, html = make_message(invitation, token)
        self.db.Outbox(to=to, subject=subject, text=text, html=html,
                       invitation_id=invitation["id"], status="pending", attempts=0,
                       next_attempt_at=now, created_at=now)
