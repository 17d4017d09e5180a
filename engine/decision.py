"""The answer to one (principal, resource, action) question."""

from __future__ import annotations

from dataclasses import dataclass, field


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
