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

from rolebook.engine.conditions import FACT_CHECKS, fact_variable
from rolebook.engine.evaluate import ALLOW, refused


def generate(plan, ranks) -> Callable:
    """`plan.evaluate` as generated code, falling back to it for missing or ill-typed facts.

    Only for plans without a constant answer, which always have an allow step. The steps
    are read in their one order (`engine.model.ordered_steps`).
    """
    names = {"RANKS": ranks, "SLOW": plan.evaluate, "REFUSED": refused, "PLAN": plan,
             "REFUSALS": plan.refusals.get}

    def constant(decision) -> str:
        name = f"D{len(names)}"
        names[name] = decision
        return name

    facts = frozenset().union(*(s.node.facts for s in plan.steps if s.node is not None))
    attributes = sorted(f for f in facts if f != "resource.id")
    lines = ["def fast(p, r, a):"]
    if attributes:
        lines.append("    try:")
        lines += [f"        {fact_variable(name)} = a[{name!r}]" for name, _ in attributes]
        lines += ["    except (KeyError, TypeError):", "        return SLOW(p, r, a)"]
    checks = [FACT_CHECKS[kind].format(v=fact_variable(name)) for name, kind in attributes]
    if "resource.id" in facts:
        checks.append("r is not None")
    if checks:
        lines += [f"    if not ({' and '.join(checks)}):", "        return SLOW(p, r, a)"]
    previous = None
    for step in (*plan.steps, None):  # None: past the end, so the allows' `else` is written
        if previous == ALLOW and (step is None or step.stage != ALLOW):
            lines += ["    else:", f"        k = ({_false_parts(plan)})",
                      "        return REFUSALS(k) or REFUSED(PLAN, k)"]
        if step is None:
            break
        test = "True" if step.node is None else step.node.expr
        decision = constant(step.rule.decision)
        if step.stage == ALLOW:
            keyword = "elif" if previous == ALLOW else "if"
            lines += [f"    {keyword} {test}:", f"        allowed = {decision}"]
        else:
            lines += [f"    if {test}:", f"        return {decision}"]
        previous = step.stage
    lines.append("    return allowed")
    code = compile("\n".join(lines), f"<plan {plan.kind}.{plan.action} for {plan.role}>", "exec")
    exec(code, names)
    return names["fast"]


def _false_parts(plan) -> str:
    """`engine.evaluate._first_false` of each conditional allow, as inline expressions."""
    parts = []
    for step in plan.conditional_allows:
        tests = [f"{i} if not ({child.expr}) else " for i, child in enumerate(step.node.children)]
        parts.append(f"{''.join(tests)}-1" if step.node.op == "all" else "-1")
    return "".join(f"{part}, " for part in parts)
