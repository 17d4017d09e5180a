"""The answer to one (principal, resource, action) question."""

from __future__ import annotations

from dataclasses import dataclass


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

    @property
    def allowed(self) -> bool:
        return self.effect == "allow"

    def as_dict(self) -> dict:
        return {"effect": self.effect, "rule": self.rule, "reason": self.reason}
