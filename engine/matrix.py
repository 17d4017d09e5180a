"""The role-by-kind/action table of one policy version, as SPEC.md draws it.

Built from the compiled plans, so the table shows what the evaluator does,
not what a reader thinks the YAML says. A conditional cell names the rules
and conditions that can decide it.
"""

from __future__ import annotations

import json

from rolebook.engine.model import ALLOW, Plan, Policy, Step

SYMBOLS = {"allow": "yes", "deny": "no"}


def cell(plan: Plan) -> dict:
    """`allow`/`deny` when no fact can change the answer, else `conditional` with its rules."""
    if plan.constant is not None:
        return {"effect": plan.constant.effect, "rule": _name(plan.constant.rule)}
    allows = [s for s in plan.steps if s.stage == ALLOW]
    denies = [s for s in plan.steps if s.stage != ALLOW]
    always = next((s.rule for s in allows if s.node is None), None)
    if always is not None and not denies:
        return {"effect": "allow", "rule": always.name}
    return {
        "effect": "conditional",
        "allow_when": [_step(s) for s in allows],
        "deny_when": [_step(s) for s in denies],
    }


def _step(step: Step) -> dict:
    out = {"rule": step.rule.name, "condition": step.node.text if step.node else None}
    if step.stage != ALLOW:  # an invariant refuses as a conflict (HTTP 409), after an allow
        out["conflict"] = step.rule.decision.conflict
    return out


def _name(rule_id: str) -> str:
    return rule_id.rsplit("#", 1)[-1]


def table(policy: Policy) -> dict:
    """Rows of `kind.action`, one cell per role; conditions are numbered as footnotes."""
    rows, notes = [], []
    for kind, actions in policy.kinds.items():
        for action in actions:
            cells = {}
            for role in policy.roles:
                c = cell(policy.plans[(kind, action, role)])
                if c["effect"] == "conditional":
                    key = {k: c[k] for k in ("allow_when", "deny_when")}
                    if key not in notes:
                        notes.append(key)
                    c["note"] = notes.index(key) + 1
                cells[role] = c
            rows.append({"kind": kind, "action": action, "cells": cells})
    return {"policy": policy.name, "version": policy.version, "digest": policy.digest,
            "roles": list(policy.roles), "rows": rows,
            "notes": [{"note": i + 1, **n} for i, n in enumerate(notes)]}


def _label(c: dict) -> str:
    if c["effect"] != "conditional":
        return SYMBOLS[c["effect"]]
    return f"if [{c['note']}]" if not _always_unless(c) else f"yes unless [{c['note']}]"


def _always_unless(c: dict) -> bool:
    return any(r["condition"] is None for r in c["allow_when"])


def _note_lines(note: dict) -> list[str]:
    lines = [f"[{note['note']}]"]
    for r in note["deny_when"]:
        if not r["conflict"]:
            lines.append(f"    deny by {r['rule']} when {r['condition']}")
    for r in note["allow_when"]:
        when = f" when {r['condition']}" if r["condition"] else ""
        lines.append(f"    allow by {r['rule']}{when}")
    if not any(r["condition"] is None for r in note["allow_when"]):
        lines.append("    otherwise deny")
    for r in note["deny_when"]:
        if r["conflict"]:
            lines.append(f"    but refuse as a conflict (409) by {r['rule']} "
                         f"when {r['condition']}")
    return lines


def render(table: dict, fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps(table, indent=2)
    head = ["kind.action", *table["roles"]]
    body = [[f"{r['kind']}.{r['action']}", *(_label(r["cells"][role]) for role in table["roles"])]
            for r in table["rows"]]
    title = f"{table['policy']}@{table['version']} {table['digest']}"
    notes = [line for n in table["notes"] for line in _note_lines(n)]
    if fmt == "markdown":
        lines = [f"### {title}", "", "| " + " | ".join(head) + " |",
                 "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        if notes:
            lines += ["", "```", *notes, "```"]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = [title, ""]
    for row in [head, *body]:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)
