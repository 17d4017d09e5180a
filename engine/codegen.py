"""Write one Python function per conditional plan: the evaluator's fast path.

Calling a closure per condition node costs about 60 ns a call, and a member
check walks a dozen of them. The generated function reads every fact the
plan's rules use once, checks each is present and of its declared type, and
then decides with inline expressions and no calls. When a fact is missing or
ill-typed it hands the request to `Plan.evaluate` (the closures), which fails
closed and says which fact was missing, so both paths give the same Decision
for every input (a property test holds them to it).

The source is generated from the policy's own condition trees, whose names and
literals were validated; literals enter the source only through `repr`.
"""

from __future__ import annotations

from collections.abc import Callable

from rolebook.engine.conditions import fact_variable

CHECKS = {
    "role": "{v}.__class__ is str and {v} in RANKS",
    "integer": "{v}.__class__ is int",
    "boolean": "{v}.__class__ is bool",
    "string": "{v}.__class__ is str",
}


def generate(plan, ranks) -> Callable:
    """`plan.evaluate` as generated code, falling back to it for missing or ill-typed facts.

    Only for plans without a constant answer, which always have an allow rule.
    """
    names = {"RANKS": ranks, "SLOW": plan.evaluate, "FALLBACK": plan.fallback}

    def constant(decision) -> str:
        name = f"D{len(names)}"
        names[name] = decision
        return name

    def test(rule) -> str:
        return "True" if rule.node is None else rule.node.expr

    facts = frozenset().union(*(r.node.facts for r in plan.rules if r.node is not None))
    attributes = sorted(f for f in facts if f != "resource.id")
    lines = ["def fast(p, r, a):"]
    if attributes:
        lines.append("    try:")
        lines += [f"        {fact_variable(name)} = a[{name!r}]" for name, _ in attributes]
        lines += ["    except (KeyError, TypeError):", "        return SLOW(p, r, a)"]
    checks = [CHECKS[kind].format(v=fact_variable(name)) for name, kind in attributes]
    if "resource.id" in facts:
        checks.append("r is not None")
    if checks:
        lines += [f"    if not ({' and '.join(checks)}):", "        return SLOW(p, r, a)"]
    for rule in plan.denies:
        if not rule.decision.conflict:
            lines += [f"    if {test(rule)}:", f"        return {constant(rule.decision)}"]
    for i, rule in enumerate(plan.allows):
        lines += [f"    {'elif' if i else 'if'} {test(rule)}:",
                  f"        allowed = {constant(rule.decision)}"]
    lines += ["    else:", "        return FALLBACK"]
    for rule in plan.denies:  # invariants: consulted only once something allows
        if rule.decision.conflict:
            lines += [f"    if {test(rule)}:", f"        return {constant(rule.decision)}"]
    lines.append("    return allowed")
    code = compile("\n".join(lines), f"<plan {plan.kind}.{plan.action} for {plan.role}>", "exec")
    exec(code, names)
    return names["fast"]
