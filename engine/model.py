"""The compiled, runnable policy: what compile builds and evaluate, diff, matrix, testing read.

Kept apart from compile and evaluate (as Cerbos keeps its runnable policy
types), so a reader finds every field of a compiled policy in one place and
the tools read rules from here instead of re-reading YAML.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

from rolebook.engine.conditions import Node
from rolebook.engine.evaluate import ALLOW, DENY, INVARIANT, checker, decide
from rolebook.engine.vocabulary import DEFAULT_DENY

__all__ = ["ALLOW", "DENY", "INVARIANT", "Decision", "Membership", "Plan", "Policy", "Rule", "Step",
           "ordered_steps"]


@dataclass(frozen=True, slots=True)
class Decision:
    """Immutable, so unconditional answers are built once at compile time and shared."""

    effect: str  # "allow" | "deny"
    rule: str  # "<policy>@<version>#<rule>"
    reason: str
    policy: str
    version: int
    digest: str
    conflict: bool = False  # a denial that breaks an account invariant (409), not authority (403)
    allowed: bool = field(init=False)  # a slot, not a property: read once per decision
    # The answer's JSON shape, built once: constant decisions are shared by every request, so
    # a response may hold this very dict many times. Read it; never change it.
    view: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed", self.effect == "allow")
        object.__setattr__(self, "view", {"effect": self.effect, "rule": self.rule,
                                          "reason": self.reason})

    def as_dict(self) -> dict:
        return dict(self.view)


@dataclass(frozen=True)
class Membership:
    """The account settings a policy fixes: which role owns, how many must, email scope, invitations
    (storage and the API read them from here)."""

    owner_role: str
    min_owners: int
    email_accounts: str
    invitation_ttl_hours: int
    invitation_requires_names: bool

    @property
    def single_email_scope(self) -> bool:
        return self.email_accounts == "one"


@dataclass(frozen=True)
class Rule:
    """One rule as the policy declares it, role-independent: its condition stays policy data."""

    id: str  # "<policy>@<version>#<name>"
    name: str
    kind: str
    effect: str
    actions: frozenset[str]
    when: dict | None  # the validated condition tree; compiled per role into Step.node
    decision: Decision


@dataclass(frozen=True)
class Step:
    """One rule in one plan: its stage and its condition compiled for the plan's role."""

    stage: str  # DENY | ALLOW | INVARIANT
    rule: Rule
    node: Node | None  # None: the rule applies unconditionally


def ordered_steps(steps: list[Step]) -> tuple[Step, ...]:
    """Rule order, written once: denies, then allows, then invariants, each in file order.

    Deny wins; invariants (`conflict: true`) are consulted only once something allows, so a
    caller without the authority hears "forbidden", never facts about the account. A plan
    with no allow is a default deny, so it has no steps; rules after an unconditional one of
    the same effect (in file order) can never decide, so they are dropped.
    """
    if not any(s.stage == ALLOW for s in steps):
        return ()
    denies = _until_unconditional(s for s in steps if s.stage != ALLOW)
    allows = _until_unconditional(s for s in steps if s.stage == ALLOW)
    return (*(s for s in denies if s.stage == DENY), *allows,
            *(s for s in denies if s.stage == INVARIANT))


def _until_unconditional(steps) -> list[Step]:
    out = []
    for step in steps:
        out.append(step)
        if step.node is None:
            break
    return out


class Plan:
    """The ordered steps that can decide one (kind, action, role), and their fast path."""

    def __init__(self, kind: str, action: str, role: str, steps: tuple[Step, ...],
                 fallback: Decision):
        self.kind, self.action, self.role = kind, action, role
        self.steps = steps
        self.fallback = fallback
        self.constant = _constant(steps, fallback)
        self.conditional_allows = tuple(s for s in steps if s.stage == ALLOW and s.node)
        self.refusals: dict[tuple[int, ...], Decision] = {}  # engine.evaluate.refused's
        # engine.codegen's function for a plan without a constant answer; set by compile
        self.generated: Callable[[str, object, dict | None], Decision] | None = None

    def evaluate(self, pid: str, rid: object, attr: dict | None,
                 trace: list | None = None) -> Decision:
        """The closure path; with `trace`, every step and its conditions are recorded (explain)."""
        return decide(self, pid, rid, attr, trace)


def _constant(steps: tuple[Step, ...], fallback: Decision) -> Decision | None:
    """The answer when no fact can change it: no steps, or a first step nothing can overrule."""
    if not steps:
        return fallback
    first = steps[0]
    if first.node is not None:
        return None
    if first.stage == DENY or not any(s.stage == INVARIANT for s in steps):
        return first.rule.decision
    return None


@dataclass(eq=False)
class Policy:
    """One immutable, compiled version of one policy."""

    name: str
    version: int
    digest: str
    description: str
    roles: tuple[str, ...]
    ranks: dict[str, int]
    membership: Membership
    kinds: dict[str, tuple[str, ...]]
    attributes: dict[str, dict[str, str]]
    rules: tuple[Rule, ...] = field(repr=False)  # every declared rule in file order
    source: str
    file: str
    plans: dict[tuple[str, str, str], Plan] = field(repr=False)

    def __post_init__(self):
        self.ranks = MappingProxyType(self.ranks)
        self.check = checker(self.plans, self.undefined)
        # `kinds` as sets: the decision log asks whether each logged action is defined.
        self.action_sets = {kind: frozenset(actions) for kind, actions in self.kinds.items()}

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
        """The decision, and every step of its plan in order with each condition's value."""
        plan = self.plans.get((kind, action, role))
        if plan is None:
            return self.undefined(role, kind, action), []
        trace: list[dict] = []
        return plan.evaluate(pid, rid, attr, trace), trace

    def undefined(self, role: str, kind: str, action: str) -> Decision:
        if role not in self.ranks:
            reason = f"role {role!r} is not defined in {self.ref}"
        elif kind not in self.kinds:
            reason = f"{self.ref} defines no resource kind {kind!r}"
        else:
            reason = f"{self.ref} defines no action {action!r} on {kind}"
        return Decision("deny", f"{self.ref}#{DEFAULT_DENY}", reason,
                        self.name, self.version, self.digest)
