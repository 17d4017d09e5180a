"""What every account-scoped request does first: find the account, the caller's role, the policy.

Also the one place decisions are made for operations, so each is logged and
counted exactly like a decision of the check endpoint.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from dataclasses import dataclass

from rolebook.api.auth import Caller
from rolebook.api.decision_log import DecisionLog, resource_entry
from rolebook.api.metrics import Metrics
from rolebook.api.policy_set import PolicySet
from rolebook.api.problems import Problem, forbidden, not_found
from rolebook.engine import Decision, Policy
from rolebook.storage import Store


@dataclass
class Services:
    """Everything a resource needs, passed in so tests never monkeypatch."""

    config: object
    policies: PolicySet
    store: Store
    decisions: DecisionLog
    metrics: Metrics
    mailer: object = None
    verifier: object = None  # auth.Verifier: /readyz reports a provider whose keys went stale


@dataclass(frozen=True)
class AccountAccess:
    account: dict
    role: str
    policy: Policy


def policy_unavailable(account: dict) -> Problem:
    return Problem(503, "policy-unavailable", "Policy unavailable",
                   f"policy {account['policy']}@{account.get('policy_version') or 'active'} of "
                   "this account is not loaded; every action is denied until it is")


def account_access(services: Services, account_id: str, caller: Caller) -> AccountAccess:
    """The account and the caller's role in it; 404 when either is missing (no enumeration)."""
    account, role = services.store.accounts.access(account_id, caller.id)
    if role is None:
        raise not_found(f"no account {account_id!r} among yours")
    policy = services.policies.for_account(account)
    if policy is None:
        raise policy_unavailable(account)
    return AccountAccess(account, role, policy)


_ID_PREFIX = secrets.token_hex(6)
_ID_COUNTER = itertools.count(1)


def _new_id_prefix() -> None:
    """A forked worker must not share its parent's prefix, or two workers would hand out the
    same decision ids."""
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX, _ID_COUNTER = secrets.token_hex(6), itertools.count(1)


os.register_at_fork(after_in_child=_new_id_prefix)


def new_decision_id() -> str:
    """Unique across processes (random prefix per process) without a syscall per decision."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):010x}"


def log_context(decision_id: str, caller: Caller, principal: dict, account_id: str | None,
                policy_ref: str, digest: str, latency_ns: int) -> dict:
    """The fields of one request's decision-log line besides its decisions."""
    return {"decision_id": decision_id, "caller": caller.id, "principal": principal,
            "account_id": account_id, "policy": policy_ref, "digest": digest,
            "latency_ns": latency_ns}


def count_effects(services: Services, allowed: int, denied: int) -> None:
    if allowed:
        services.metrics.decisions.labels("allow").inc(allowed)
    if denied:
        services.metrics.decisions.labels("deny").inc(denied)


def decider(services: Services, access: AccountAccess, caller: Caller, resource_id=None):
    """The callback storage calls inside its transaction, with the facts it gathered there."""
    policy, account_id = access.policy, access.account["id"]

    def decide(kind: str, action: str, actor_role: str, attr: dict) -> Decision:
        started = time.perf_counter_ns()
        decision = policy.check(caller.id, actor_role, kind, action, attr, resource_id)
        count_effects(services, decision.allowed, not decision.allowed)
        services.decisions.record(
            log_context(new_decision_id(), caller, {"id": caller.id, "role": actor_role},
                        account_id, policy.ref, policy.digest, time.perf_counter_ns() - started),
            [resource_entry(kind, resource_id, attr, {action: decision.view},
                            policy.kinds.get(kind, ()))])
        return decision
    return decide


def require(services: Services, access: AccountAccess, caller: Caller, kind: str, action: str,
            attr: dict | None = None, resource_id=None) -> Decision:
    """Ask the policy for a read-only action; 403 naming the rule when it says no."""
    decision = decider(services, access, caller, resource_id)(kind, action, access.role,
                                                              attr or {})
    if not decision.allowed:
        raise forbidden(decision.rule, decision.reason)
    return decision
