"""Evaluation: pure functions of (principal, resource facts) over a compiled Policy.

Deny wins over allow; no matching allow is deny. Invariant rules (`conflict:
true`, e.g. "keep an owner") are consulted only for an action some rule
allows, so a caller without the authority hears "forbidden", never facts
about the account. A rule whose condition cannot be evaluated (a fact is
missing or ill-typed) fails closed: a deny rule then denies, an allow rule
does not allow, and the reason says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from rolebook.engine.conditions import Node, Unevaluable
from rolebook.engine.decision import Decision
from rolebook.engine.vocabulary import DEFAULT_DENY


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    effect: str
    actions: frozenset[str]
    node: Node | None
    decision: Decision


class Plan:
    """The ordered rules that can decide one (kind, action, role), and their fast path."""

    def __init__(self, kind, action, role, denies, allows, fallback: Decision):
        self.kind, self.action, self.role = kind, action, role
        self.denies = _until_unconditional(denies)
        self.allows = _until_unconditional(allows)
        self.fallback = fallback
        self.constant = self._constant()
        self._denies = _pairs(r for r in self.denies if not r.decision.conflict)
        self._guards = _pairs(r for r in self.denies if r.decision.conflict)
        self._allows = _pairs(self.allows)

    def _constant(self) -> Decision | None:
        if not self.allows:
            return self.fallback
        if self.denies:
            first = self.denies[0]
            if first.node is None and not first.decision.conflict:
                return first.decision
            return None
        first = self.allows[0]
        return first.decision if first.node is None else None

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.denies + self.allows

    def evaluate(self, pid: str, rid: object, attr: dict | None) -> Decision:
        denied = _first_match(self._denies, pid, rid, attr)
        if denied is not None:
            return denied
        skipped = allowed = None
        for fn, rule in self._allows:
            try:
                if fn is None or fn(pid, rid, attr):
                    allowed = rule.decision
                    break
            except Unevaluable as exc:
                skipped = skipped or (rule, exc)
        if allowed is None:
            if skipped is None:
                return self.fallback
            rule, exc = skipped
            return replace(self.fallback, reason=f"{self.fallback.reason}: {rule.name} needs "
                                                 f"facts the request lacks ({exc}); failing closed")
        return _first_match(self._guards, pid, rid, attr) or allowed

    def explain(self, pid: str, rid: object, attr: dict | None) -> list[dict]:
        """Every rule considered, in order, with the value of each condition node."""
        trace = []
        for rule in self.rules:
            entry = {"rule": rule.id, "effect": rule.effect, "conditions": []}
            if rule.node is None:
                entry["matched"] = True
            else:
                entry["matched"] = _walk(rule.node, pid, rid, attr, entry["conditions"])
            trace.append(entry)
        return trace


def _pairs(rules) -> tuple:
    return tuple((r.node.fn if r.node else None, r) for r in rules)


def _first_match(pairs, pid, rid, attr) -> Decision | None:
    """The first deny rule that matches, or fails closed because it cannot be evaluated."""
    for fn, rule in pairs:
        if fn is None:
            return rule.decision
        try:
            if fn(pid, rid, attr):
                return rule.decision
        except Unevaluable as exc:
            return _failed_closed(rule, exc)
    return None


def _until_unconditional(rules) -> tuple[Rule, ...]:
    """Rules after an unconditional one of the same effect can never decide."""
    out = []
    for rule in rules:
        out.append(rule)
        if rule.node is None:
            break
    return tuple(out)


def _failed_closed(rule: Rule, exc: Unevaluable) -> Decision:
    return replace(rule.decision, reason=f"{rule.name} could not be evaluated ({exc}); "
                                         "failing closed")


def _walk(node: Node, pid, rid, attr, out: list) -> bool | None:
    try:
        value = bool(node.fn(pid, rid, attr))
        out.append({"condition": node.text, "value": value})
    except Unevaluable as exc:
        value = None
        out.append({"condition": node.text, "value": None, "error": str(exc)})
    for child in node.children:
        _walk(child, pid, rid, attr, out)
    return value


@dataclass(eq=False)
class Policy:
    """One immutable, compiled version of one policy."""

    name: str
    version: int
    digest: str
    description: str
    roles: tuple[str, ...]
    ranks: dict[str, int]
    membership: object
    kinds: dict[str, tuple[str, ...]]
    attributes: dict[str, dict[str, str]]
    source: str
    file: str
    table: dict = field(repr=False)
    plans: dict = field(repr=False)

    def __post_init__(self):
        self.ranks = MappingProxyType(self.ranks)
        self.check = _checker(self.table, self.undefined)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def rank(self, role: str) -> int | None:
        return self.ranks.get(role)

    def check_batch(self, pid: str, role: str, resources: list[dict]) -> list[dict[str, Decision]]:
        """One principal, many resources, many actions each."""
        check = self.check
        return [
            {a: check(pid, role, r["kind"], a, r.get("attr"), r.get("id")) for a in r["actions"]}
            for r in resources
        ]

    def explain(self, pid: str, role: str, kind: str, action: str,
                attr: dict | None = None, rid: object = None) -> tuple[Decision, list[dict]]:
        plan = self.plans.get((kind, action, role))
        decision = self.check(pid, role, kind, action, attr, rid)
        return decision, (plan.explain(pid, rid, attr) if plan else [])

    def undefined(self, role: str, kind: str, action: str) -> Decision:
        if role not in self.ranks:
            reason = f"role {role!r} is not defined in {self.ref}"
        elif kind not in self.kinds:
            reason = f"{self.ref} defines no resource kind {kind!r}"
        else:
            reason = f"{self.ref} defines no action {action!r} on {kind}"
        return Decision("deny", f"{self.ref}#{DEFAULT_DENY}", reason,
                        self.name, self.version, self.digest)


def _checker(table: dict, undefined: Callable[[str, str, str], Decision]) -> Callable:
    """`Policy.check(pid, role, kind, action, attr=None, rid=None) -> Decision`.

    The hot path, so a closure over two dicts rather than a method: a constant answer is
    one lookup; otherwise the plan's generated function (engine.codegen) decides.
    """
    constant = {k: v for k, v in table.items() if v.__class__ is Decision}.get
    generated = {k: v for k, v in table.items() if v.__class__ is not Decision}.get

    def check(pid: str, role: str, kind: str, action: str,
              attr: dict | None = None, rid: object = None) -> Decision:
        key = (kind, action, role)
        decision = constant(key)
        if decision is not None:
            return decision
        fn = generated(key)
        if fn is None:
            return undefined(role, kind, action)
        return fn(pid, rid, attr)

    return check
