"""A tiny policy written as plain Python, for storage tests: storage must work with any policy.

Imported by storage tests and their fixtures (tests/storage/conftest.py) from here, as a
conftest is not meant to be imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RANK = {"read": 1, "edit": 2, "owner": 3}
OWNER = "owner"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str
    reason: str = ""
    conflict: bool = False
    policy: str = "testpol"
    version: int = 1


def allow(rule: str) -> Decision:
    return Decision(True, rule, "allowed")


def deny(rule: str, reason: str, conflict: bool = False) -> Decision:
    return Decision(False, rule, reason, conflict)


def decide(kind: str, action: str, role: str, attr: dict[str, Any]) -> Decision:
    """A Convert-like policy written as plain Python for tests."""
    rank = RANK[role]
    if kind == "account":
        return allow("owners-delete") if role == OWNER else deny("no-rule", "owners only")
    if kind == "invitation":
        if action in ("create", "resend"):
            ok = rank >= RANK["edit"] and RANK[attr["role"]] <= rank
            return allow("grant-up-to-own") if ok else deny("no-rule", "cannot grant that")
        ok = role == OWNER or (rank >= RANK["edit"] and attr["role"] != OWNER)
        return allow("revoke") if ok else deny("no-rule", "cannot revoke")
    target_is_owner = attr["target_role"] == OWNER
    if action == "update_role":
        new = attr["new_role"]
        if attr["is_self"] and RANK[new] > rank:
            return deny("nobody-raises-own-role", "nobody may raise their own role")
        if target_is_owner and new != OWNER and attr["owner_count"] <= 1:
            return deny("keep-an-owner", "the account must keep an owner", conflict=True)
        if attr["is_self"] or role == OWNER:
            return allow("self-or-owner")
        ok = rank >= RANK["edit"] and not target_is_owner and RANK[new] <= rank
        return allow("editors-manage") if ok else deny("no-rule", "not allowed")
    if target_is_owner and attr["owner_count"] <= 1:
        return deny("only-owner-stays", "the only owner cannot leave", conflict=True)
    if action == "leave" or role == OWNER:
        return allow("leave-or-owner")
    ok = rank >= RANK["edit"] and not target_is_owner
    return allow("editors-remove") if ok else deny("no-rule", "not allowed")


def make_message(invitation: dict[str, Any], token: str) -> tuple[str, str, str, str]:
    link = f"https://rolebook.test/invitations/accept?token={token}"
    return (invitation["email"], "You are invited", f"Accept: {link}",
            f'<a href="{link}">Accept</a>')
