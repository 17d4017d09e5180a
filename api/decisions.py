"""Decisions made for operations, counted and logged exactly like a decision of /v1/check."""

from __future__ import annotations

import time

from rolebook.api.account_lookup import AccountAccess
from rolebook.api.auth import Caller
from rolebook.api.decision_log import NONE, log_context, resource_entry
from rolebook.api.problems import forbidden
from rolebook.api.services import Services
from rolebook.api.unique_ids import new_id
from rolebook.engine import Decision


def count_effects(services: Services, allowed: int, denied: int) -> None:
    if allowed:
        services.metrics.allowed.inc(allowed)
    if denied:
        services.metrics.denied.inc(denied)


def decider(services: Services, access: AccountAccess, caller: Caller, resource_id=None):
    """The callback storage calls inside its transaction, with the facts it gathered there."""
    policy, account_id = access.policy, access.account["id"]

    def decide(kind: str, action: str, actor_role: str, attr: dict) -> Decision:
        started = time.perf_counter_ns()
        decision = policy.check(caller.id, actor_role, kind, action, attr, resource_id)
        count_effects(services, decision.allowed, not decision.allowed)
        services.decisions.record(
            log_context(new_id(), caller, {"id": caller.id, "role": actor_role},
                        account_id, policy.ref, policy.digest, time.perf_counter_ns() - started),
            [resource_entry(kind, resource_id, attr, {action: decision.view},
                            policy.action_sets.get(kind, NONE))])
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
