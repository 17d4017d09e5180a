"""Exhaustive decision diff between two versions of a policy.

Conditions only compare facts with roles, booleans, literals and settings, so
a finite set of values per fact covers every distinguishable case: each role
for role facts, true/false, every integer boundary ±1 (and 0), the principal's
own id versus another string, and the fact being absent. Checking each case
in both versions finds every change in decision, not a sample of them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from rolebook.engine.conditions import is_reference, operands, rank_argument
from rolebook.engine.model import Decision, Policy

PRINCIPAL_ID = "u_principal"
OTHER_ID = "u_other"


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


ABSENT = _Absent()


@dataclass(frozen=True)
class Change:
    kind: str
    action: str
    role: str
    facts: tuple[tuple[str, object], ...]
    before: Decision
    after: Decision

    def __str__(self) -> str:
        facts = "".join(f" {k}={_show(v)}" for k, v in self.facts)
        return (f"{self.kind}.{self.action} role={self.role}{facts}: "
                f"{self.before.effect} ({self.before.rule}) -> "
                f"{self.after.effect} ({self.after.rule})")


@dataclass
class Diff:
    cases: int
    changes: list[Change]
    settings: list[str]


def _show(value: object) -> str:
    if value is ABSENT:
        return "<absent>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == PRINCIPAL_ID:
        return "principal.id"
    return repr(value) if isinstance(value, str) else str(value)


@dataclass
class _Uses:
    """What the conditions of one kind/action look at."""

    attributes: set
    integers: set
    strings: set
    settings: set
    ranks: bool = False
    resource_id: bool = False


def _operand(raw: object, uses: _Uses) -> None:
    if isinstance(raw, dict):
        raw = raw["literal"]
    elif is_reference(raw):
        _reference(raw, uses)
        return
    if isinstance(raw, bool):
        return
    if isinstance(raw, int):
        uses.integers.add(raw)
    elif isinstance(raw, str):
        uses.strings.add(raw)


def _reference(ref: str, uses: _Uses) -> None:
    inner = rank_argument(ref)
    if inner is not None:
        uses.ranks = True
        if is_reference(inner):
            _reference(inner, uses)
    elif ref == "principal.rank":
        uses.ranks = True
    elif ref == "resource.id":
        uses.resource_id = True
    elif ref.startswith("resource.attr."):
        uses.attributes.add(ref.removeprefix("resource.attr."))
    elif ref.startswith("membership."):
        uses.settings.add(ref.removeprefix("membership."))


def _uses(policies: list[Policy], kind: str, action: str) -> _Uses:
    uses = _Uses(set(), set(), set(), set())
    for policy in policies:
        for rule in policy.rules:
            if rule.kind == kind and action in rule.actions and rule.when is not None:
                for raw in operands(rule.when):
                    _operand(raw, uses)
    return uses


def _values(name: str, types: set[str], uses: _Uses, policies: list[Policy],
            roles: list[str]) -> list[object]:
    values: list[object] = []
    if "role" in types:
        values += roles
    if "boolean" in types:
        values += [True, False]
    if "integer" in types:
        points = set(uses.integers)
        for policy in policies:
            for setting in uses.settings:
                value = getattr(policy.membership, setting, None)
                if isinstance(value, int) and not isinstance(value, bool):
                    points.add(value)
            if uses.ranks:
                points.update(policy.ranks.values())
        values += sorted({0} | {p + d for p in points for d in (-1, 0, 1)})
    if "string" in types:
        values += [PRINCIPAL_ID, OTHER_ID, *sorted(uses.strings - set(roles))]
    return [*dict.fromkeys(values), ABSENT]


def _union(*seqs) -> list:
    return list(dict.fromkeys(x for seq in seqs for x in seq))


def diff(a: Policy, b: Policy) -> Diff:
    """Every (role, kind, action, facts) case whose effect differs between `a` and `b`."""
    roles = _union(a.roles, b.roles)
    kinds = _union(a.kinds, b.kinds)
    cases, changes = 0, []
    for kind in kinds:
        for action in _union(a.kinds.get(kind, ()), b.kinds.get(kind, ())):
            uses = _uses([a, b], kind, action)
            names = sorted(uses.attributes)
            axes = []
            for name in names:
                types = {p.attributes.get(kind, {}).get(name) for p in (a, b)} - {None}
                axes.append(_values(name, types, uses, [a, b], roles))
            ids = [PRINCIPAL_ID, OTHER_ID, None] if uses.resource_id else [None]
            for role, rid, combo in itertools.product(roles, ids, itertools.product(*axes)):
                cases += 1
                attr = {n: v for n, v in zip(names, combo, strict=True) if v is not ABSENT}
                before = a.check(PRINCIPAL_ID, role, kind, action, attr, rid)
                after = b.check(PRINCIPAL_ID, role, kind, action, attr, rid)
                if before.effect != after.effect:
                    facts = tuple(zip(names, combo, strict=True))
                    if uses.resource_id:
                        facts = (("resource.id", ABSENT if rid is None else rid), *facts)
                    changes.append(Change(kind, action, role, facts, before, after))
    return Diff(cases, changes, _settings(a, b))


def _settings(a: Policy, b: Policy) -> list[str]:
    out = []
    for field in a.membership.__dataclass_fields__:
        before, after = getattr(a.membership, field), getattr(b.membership, field)
        if before != after:
            out.append(f"membership.{field}: {before!r} -> {after!r}")
    if a.roles != b.roles:
        out.append(f"roles: {list(a.roles)} -> {list(b.roles)}")
    return out


def render(result: Diff, a: Policy, b: Policy) -> str:
    lines = [f"--- {a.ref} {a.digest}", f"+++ {b.ref} {b.digest}"]
    lines += result.settings
    lines += [str(c) for c in result.changes]
    lines.append(f"{len(result.changes)} of {result.cases} cases differ; the diff is exhaustive "
                 f"over {result.cases} cases (every role, kind/action and distinguishable value "
                 "of each fact the conditions use)")
    return "\n".join(lines)
