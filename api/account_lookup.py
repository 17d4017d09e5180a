"""What every account-scoped request does first: find the account, the caller's role in it,
and the policy version that governs it."""

from __future__ import annotations

from dataclasses import dataclass

from rolebook.api.auth import Caller
from rolebook.api.problems import Problem, not_found
from rolebook.api.services import Services
from rolebook.engine import Policy
from rolebook.storage import NotFound


@dataclass(frozen=True)
class AccountAccess:
    account: dict
    role: str
    policy: Policy


def policy_unavailable(account: dict) -> Problem:
    return Problem(503, "policy-unavailable", "Policy unavailable",
                   f"policy {account['policy']}@{account.get('policy_version') or 'active'} of "
                   "this account is not loaded; every action is denied until it is")


def no_account(account_id: str) -> Problem:
    """One answer for an account that does not exist and for one the caller is not in: the
    two once read differently, which told a real account id from a made-up one."""
    return not_found(f"no account {account_id!r} among yours")


def account_access(services: Services, account_id: str, caller: Caller) -> AccountAccess:
    """The account and the caller's role in it; 404 when either is missing (no enumeration)."""
    try:
        account, role = services.store.accounts.access(account_id, caller.id)
    except NotFound:
        raise no_account(account_id) from None
    if role is None:
        raise no_account(account_id)
    policy = services.policies.for_account(account)
    if policy is None:
        raise policy_unavailable(account)
    return AccountAccess(account, role, policy)
