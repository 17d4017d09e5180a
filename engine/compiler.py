"""Compile a validated policy document into an immutable, evaluable Policy.

The work happens here so evaluation does almost none: for every
(kind, action, role) the applicable rules become a plan's ordered steps,
conditions become closures and generated code, and answers that need no facts become one
shared Decision object.
"""

from __future__ import annotations

import hashlib

from rolebook.engine.codegen import generate
from rolebook.engine.conditions import ConditionError, Scope, compile_condition
from rolebook.engine.evaluate import ALLOW, DENY, INVARIANT
from rolebook.engine.loader import Source
from rolebook.engine.model import Decision, Membership, Plan, Policy, Rule, Step, ordered_steps
from rolebook.engine.problems import PolicyProblem
from rolebook.engine.vocabulary import DEFAULT_DENY

MEMBERSHIP_DEFAULTS = {"invitation_requires_names": False}


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def compile_policy(source: Source) -> tuple[Policy | None, list[PolicyProblem]]:
    doc = source.data
    name, version, digest = doc["name"], doc["version"], digest_of(source.text)
    roles = tuple(r["name"] for r in doc["roles"])
    ranks = {role: i for i, role in enumerate(roles)}
    membership = Membership(**{**MEMBERSHIP_DEFAULTS, **doc["membership"]})
    settings = {k: getattr(membership, k) for k in MEMBERSHIP_DEFAULTS | doc["membership"]}
    prefix = f"{name}@{version}#"
    problems: list[PolicyProblem] = []
    plans: dict[tuple[str, str, str], Plan] = {}
    declared: list[Rule] = []

    for kind, resource in doc["resources"].items():
        attributes = resource.get("attributes", {})
        rules = [_rule(raw, kind, prefix, name, version, digest) for raw in resource["rules"]]
        declared += rules
        for role, rank in ranks.items():
            scope = Scope(attributes, ranks, settings, role, rank)
            steps = []
            for i, (raw, rule) in enumerate(zip(resource["rules"], rules, strict=True)):
                if not _applies(raw, role, rank, ranks):
                    continue
                where = ("resources", kind, "rules", i, "when")
                try:
                    node = compile_condition(rule.when, where, scope) if rule.when else None
                except ConditionError as exc:
                    problems.append(source.problem(exc.path, exc.message, "compile"))
                    continue
                stage = INVARIANT if rule.decision.conflict else rule.effect
                steps.append(Step(stage, rule, node))
            for action in resource["actions"]:
                fallback = Decision(
                    DENY, prefix + DEFAULT_DENY,
                    f"no rule allows {role} to {action} {kind}", name, version, digest,
                )
                chosen = ordered_steps([s for s in steps if action in s.rule.actions])
                plan = Plan(kind, action, role, chosen, fallback)
                if plan.constant is None:
                    plan.generated = generate(plan, ranks)
                plans[(kind, action, role)] = plan
    if problems:
        return None, _dedupe(problems)
    kinds = {kind: tuple(res["actions"]) for kind, res in doc["resources"].items()}
    return Policy(
        name=name, version=version, digest=digest, description=doc.get("description", ""),
        roles=roles, ranks=ranks, membership=membership, kinds=kinds,
        attributes={k: dict(r.get("attributes", {})) for k, r in doc["resources"].items()},
        rules=tuple(declared), source=source.text, file=source.file, plans=plans,
    ), []


def _applies(raw: dict, role: str, rank: int, ranks: dict[str, int]) -> bool:
    if "roles" in raw:
        return role in raw["roles"]
    if "min_role" in raw:
        return rank >= ranks[raw["min_role"]]
    return True


def _rule(raw: dict, kind: str, prefix: str, name: str, version: int, digest: str) -> Rule:
    rule_id = prefix + raw["name"]
    effect = raw["effect"]
    text = raw.get("reason") or raw.get("description") or (
        f"{'allowed' if effect == ALLOW else 'denied'} by {raw['name']}"
    )
    decision = Decision(effect, rule_id, text, name, version, digest, raw.get("conflict", False))
    return Rule(rule_id, raw["name"], kind, effect, frozenset(raw["actions"]), raw.get("when"),
                decision)


def _dedupe(problems: list[PolicyProblem]) -> list[PolicyProblem]:
    """A condition is compiled once per role, so the same mistake is found once per role."""
    seen, out = set(), []
    for p in problems:
        key = (p.line, p.column, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out
