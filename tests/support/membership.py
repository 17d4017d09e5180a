"""Test-only: make a user a member of an account with a role, through storage.

Storage offers exactly one way for someone to join an account: an invitation,
accepted. `join` takes that path (storage's `invitations.create` + `accept`)
so tests do not depend on the invitation HTTP routes. The invitation step is
set-up, not the subject of any test, so its decision callback simply allows;
every decision a test is about goes through the API and the real policy.
"""

from __future__ import annotations

from dataclasses import dataclass

from rolebook.storage import InvitationRules, Store


@dataclass(frozen=True)
class SetupDecision:
    allowed: bool = True
    rule: str = "test-setup"
    reason: str = "arranged by the test"
    conflict: bool = False
    policy: str | None = None
    version: int | None = None


def _allow(kind, action, role, attr) -> SetupDecision:
    return SetupDecision()


def _message(invitation: dict, token: str) -> tuple[str, str, str, str]:
    return invitation["email"], "test invitation", token, token


def invite(store: Store, account_id: str, email: str, role: str, *,
           inviter: str | None = None) -> tuple[dict, str]:
    """A pending invitation of the account (by its creator unless told) and its token."""
    inviter = inviter or store.accounts.get(account_id)["created_by"]
    return store.invitations.create(account_id, inviter, email=email, role=role, decide=_allow,
                                    make_message=_message, rules=InvitationRules(3600))


def join(store: Store, account_id: str, user_id: str, role: str, *,
         email: str | None = None, inviter: str | None = None) -> dict:
    """Make `user_id` (email `<user_id>@example.com` unless given) a member with `role`."""
    email = email or f"{user_id}@example.com"
    _, token = invite(store, account_id, email, role, inviter=inviter)
    return store.invitations.accept(token, user_id, email)["member"]


def members_of(store: Store, account_id: str) -> dict[str, str]:
    """{user_id: role} of every member, read straight from storage."""
    items, _ = store.members.list(account_id, 1000)
    return {m["user_id"]: m["role"] for m in items}


def all_members(store: Store, account_id: str) -> list[dict]:
    items, _ = store.members.list(account_id, 1000)
    return items


def all_audit(store: Store, account_id: str) -> list[dict]:
    items, _ = store.audit.list(account_id, 1000)
    return items


DELIVERY = ("delivery_status", "delivery_attempts", "last_error")


def all_invitations(store: Store, account_id: str) -> list[dict]:
    """Invitations without their delivery state, which the mail sender moves on its own."""
    items, _ = store.invitations.list(account_id, 1000)
    return [{k: v for k, v in i.items() if k not in DELIVERY} for i in items]


def snapshot(store: Store, account_id: str) -> dict:
    """Everything a request could change about an account, to compare before and after."""
    return {"account": store.accounts.get(account_id),
            "members": all_members(store, account_id),
            "audit": all_audit(store, account_id),
            "invitations": all_invitations(store, account_id)}
