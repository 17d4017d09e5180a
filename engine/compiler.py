"""Compile a validated policy document into an immutable, evaluable Policy.

The work happens here so evaluation does almost none: for every
(kind, action, role) the applicable deny and allow rules are selected in
order, conditions become closures, and answers that need no facts become one
shared Decision object.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rolebook.engine.codegen import generate
from rolebook.engine.conditions import ConditionError, Node, Scope, compile_condition
from rolebook.engine.decision import Decision
from rolebook.engine.evaluate import Plan, Policy, Rule
from rolebook.engine.loader import Source
from rolebook.engine.problems import Problem
from rolebook.engine.vocabulary import DEFAULT_DENY

MEMBERSHIP_DEFAULTS = {"invitation_requires_names": False}


@dataclass(frozen=True)
class Membership:
    """The account settings a policy fixes: who is an owner, how many, email scope, invitations."""

    owner_role: str
    min_owners: int
    email_accounts: str
    invitation_ttl_hours: int
    invitation_requires_names: bool

    @property
    def single_email_scope(self) -> bool:
        return self.email_accounts == "one"


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def compile_policy(source: Source) -> tuple[Policy | None, list[Problem]]:
    doc = source.data
    name, version, digest = doc["name"], doc["version"], digest_of(source.text)
    roles = tuple(r["name"] for r in doc["roles"])
    ranks = {role: i for i, role in enumerate(roles)}
    membership = Membership(**{**MEMBERSHIP_DEFAULTS, **doc["membership"]})
    settings = {k: getattr(membership, k) for k in MEMBERSHIP_DEFAULTS | doc["membership"]}
    prefix = f"{name}@{version}#"
    problems: list[Problem] = []
    table: dict[tuple[str, str, str], object] = {}
    plans: dict[tuple[str, str, str], Plan] = {}

    for kind, resource in doc["resources"].items():
        attributes = resource.get("attributes", {})
        for role, rank in ranks.items():
            scope = Scope(attributes, ranks, settings, role, rank)
            rules = []
            for i, raw in enumerate(resource["rules"]):
                if not _applies(raw, role, rank, ranks):
                    continue
                where = ("resources", kind, "rules", i, "when")
                try:
                    node = compile_condition(raw["when"], where, scope) if "when" in raw else None
                except ConditionError as exc:
                    problems.append(source.problem(exc.path, exc.message, "compile"))
                    continue
                rules.append(_rule(raw, node, prefix, name, version, digest))
            for action in resource["actions"]:
                chosen = [r for r in rules if action in r.actions]
                denies = tuple(r for r in chosen if r.effect == "deny")
                allows = tuple(r for r in chosen if r.effect == "allow")
                fallback = Decision(
                    "deny", prefix + DEFAULT_DENY,
                    f"no rule allows {role} to {action} {kind}", name, version, digest,
                )
                plan = Plan(kind, action, role, denies, allows, fallback)
                plans[(kind, action, role)] = plan
                table[(kind, action, role)] = plan.constant or generate(plan, ranks)
    if problems:
        return None, _dedupe(problems)
    kinds = {kind: tuple(res["actions"]) for kind, res in doc["resources"].items()}
    return Policy(
        name=name, version=version, digest=digest, description=doc.get("description", ""),
        roles=roles, ranks=ranks, membership=membership, kinds=kinds,
        attributes={k: dict(r.get("attributes", {})) for k, r in doc["resources"].items()},
        source=source.text, file=source.file, table=table, plans=plans,
    ), []


def _applies(raw: dict, role: str, rank: int, ranks: dict[str, int]) -> bool:
    if "roles" in raw:
        return role in raw["roles"]
    if "min_role" in raw:
        return rank >= ranks[raw["min_role"]]
    return True


def _rule(raw, node: Node | None, prefix, name, version, digest) -> Rule:
    rule_id = prefix + raw["name"]
    effect = raw["effect"]
    text = raw.get("reason") or raw.get("description") or (
        f"{'allowed' if effect == 'allow' else 'denied'} by {raw['name']}"
    )
    decision = Decision(effect, rule_id, text, name, version, digest, raw.get("conflict", False))
    return Rule(rule_id, raw["name"], effect, frozenset(raw["actions"]), node, decision)


def _dedupe(problems: list[Problem]) -> list[Problem]:
    """A condition is compiled once per role, so the same mistake is found once per role."""
    seen, out = set(), []
    for p in problems:
        key = (p.line, p.column, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out
