"""The Convert model as a plain Python function, written from SPEC.md.

This is the oracle every benchmarked system must agree with (100%, on every check of the
workload) before it is timed, and the floor of the in-process table: nothing that decides
through a general policy engine can be faster than this hand-written function.

It encodes, without any policy file:

- roles ``read < edit < owner`` (ranks 0, 1, 2); ``owner`` is the owner role and an account
  keeps at least one owner;
- the permission table of the "Convert model" section of SPEC.md;
- the self-service rules: everyone may lower their own role or leave, nobody may raise their
  own role, the only owner may neither leave, be removed nor step down;
- the *ours* interpretations: nobody grants (invites, promotes) above their own rank;
  editors cannot remove owners or revoke invitations that grant ``owner``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RANK = {"read": 0, "edit": 1, "owner": 2}
OWNER = "owner"
MIN_OWNERS = 1
READ, EDIT, OWN = 0, 1, 2

# (kind, action) -> minimum rank, for everything that has no condition.
_PLAIN = {
    ("account", "view"): READ,
    ("account", "update"): EDIT,
    ("account", "delete"): OWN,
    ("billing", "view"): OWN,
    ("billing", "update"): OWN,
    ("audit", "view"): OWN,
    ("report", "view"): READ,
    ("object", "view"): READ,
    ("object", "create"): EDIT,
    ("object", "update"): EDIT,
    ("object", "delete"): EDIT,
    ("member", "list"): READ,
    ("member", "view"): READ,
    ("invitation", "list"): READ,
    ("invitation", "view"): READ,
}


def _last_owner(attr: Mapping[str, Any]) -> bool:
    return attr.get("target_role") == OWNER and attr.get("owner_count", 0) <= MIN_OWNERS


def decide(role: str, kind: str, action: str, attr: Mapping[str, Any]) -> bool:
    """True when a principal with ``role`` may do ``action`` on a ``kind`` with ``attr``."""
    rank = RANK.get(role)
    if rank is None:
        return False
    need = _PLAIN.get((kind, action))
    if need is not None:
        return rank >= need

    if kind == "member":
        is_self = attr.get("is_self") is True
        if action == "update_role":
            new_rank = RANK.get(attr.get("new_role"), 99)
            if is_self and new_rank > rank:
                return False  # nobody raises their own role
            if _last_owner(attr) and attr.get("new_role") != OWNER:
                return False  # the only owner may not step down / be demoted
            if is_self:
                return True  # anyone lowers (or keeps) their own role
            if rank == OWN:
                return True
            return rank >= EDIT and attr.get("target_role") != OWNER and new_rank <= rank
        if action == "remove":
            if _last_owner(attr):
                return False
            return rank == OWN or (rank >= EDIT and attr.get("target_role") != OWNER)
        if action == "leave":
            return is_self and not _last_owner(attr)
        return False

    if kind == "invitation":
        granted = attr.get("role")
        if action in ("create", "resend"):
            return rank >= EDIT and RANK.get(granted, 99) <= rank
        if action == "revoke":
            return rank == OWN or (rank >= EDIT and granted != OWNER)
        return False

    return False


# Every (kind, action) of the Convert model, for exhaustive cross-checks.
ACTIONS: dict[str, tuple[str, ...]] = {
    "account": ("view", "update", "delete"),
    "billing": ("view", "update"),
    "audit": ("view",),
    "member": ("list", "view", "update_role", "remove", "leave"),
    "invitation": ("list", "view", "create", "resend", "revoke"),
    "report": ("view",),
    "object": ("view", "create", "update", "delete"),
}
ROLES = ("read", "edit", "owner")
