"""A fixed, seeded workload of authorization checks over the Convert model.

Mix (exact counts, then shuffled with the same seed):

- 60% product kinds: ``report view`` and ``object view/create/update/delete``;
- 25% member operations with conditions: ``member update_role/remove/leave`` with
  ``target_role``, ``new_role``, ``owner_count`` and ``is_self``;
- 15% billing and account: ``billing view/update``, ``account view/update/delete``.

Principals are ``u_0`` .. ``u_{N-1}``, each with one fixed role in the benchmarked account
(so engines that prefer prepared entities, like Cedar, can build them once). Every check
carries its expected decision from :func:`bench.reference.decide`.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

from bench.reference import decide

SEED = 20_240_605
DEFAULT_CHECKS = 100_000
USERS = 200
ROLE_WEIGHTS = (("read", 5), ("edit", 3), ("owner", 2))

# (kind, action, share of the workload); shares add up to 1.
MIX: tuple[tuple[str, str, float], ...] = (
    # 60% product kinds
    ("report", "view", 0.25),
    ("object", "view", 0.17),
    ("object", "create", 0.06),
    ("object", "update", 0.08),
    ("object", "delete", 0.04),
    # 25% member operations with conditions
    ("member", "update_role", 0.12),
    ("member", "remove", 0.08),
    ("member", "leave", 0.05),
    # 15% billing and account
    ("billing", "view", 0.03),
    ("billing", "update", 0.02),
    ("account", "view", 0.06),
    ("account", "update", 0.03),
    ("account", "delete", 0.01),
)


@dataclass(frozen=True, slots=True)
class Check:
    principal_id: str
    role: str
    kind: str
    resource_id: str
    action: str
    attr: dict[str, Any] = field(hash=False)
    expected: bool


@dataclass(frozen=True, slots=True)
class Workload:
    seed: int
    users: dict[str, str]  # principal id -> role
    checks: list[Check]

    def digest(self) -> str:
        h = hashlib.sha256()
        for c in self.checks:
            h.update(
                json.dumps(
                    [c.principal_id, c.role, c.kind, c.resource_id, c.action, c.attr, c.expected],
                    sort_keys=True,
                    separators=(",", ":"),
                ).encode()
            )
            h.update(b"\n")
        return h.hexdigest()[:16]

    def mix(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.checks:
            key = f"{c.kind}:{c.action}"
            out[key] = out.get(key, 0) + 1
        return out


def _counts(total: int) -> list[tuple[str, str, int]]:
    counts = [(k, a, int(total * share)) for k, a, share in MIX]
    short = total - sum(n for _, _, n in counts)
    k, a, n = counts[0]
    counts[0] = (k, a, n + short)  # rounding remainder goes to report:view
    return counts


def _member_attr(
    rng: random.Random, pid: str, role: str, action: str, users: dict[str, str], roles: list[str]
) -> tuple[str, dict[str, Any]]:
    self_share = 0.7 if action == "leave" else 0.3
    is_self = rng.random() < self_share
    if is_self:
        target_id, target_role = pid, role
    else:
        target_id = f"u_{rng.randrange(len(users))}"
        while target_id == pid:
            target_id = f"u_{rng.randrange(len(users))}"
        target_role = users[target_id]
    # Realistic owner counts: the principal and the target, when owners, are counted.
    needed = 0
    if role == "owner":
        needed += 1
    if target_role == "owner" and not (is_self and role == "owner"):
        needed += 1
    owner_count = max(needed, rng.choice((1, 1, 1, 2, 2, 3)))
    attr = {
        "target_role": target_role,
        "new_role": rng.choice(roles),
        "owner_count": owner_count,
        "is_self": is_self,
    }
    return target_id, attr


def generate(total: int = DEFAULT_CHECKS, seed: int = SEED, users: int = USERS) -> Workload:
    rng = random.Random(seed)
    roles = [r for r, _ in ROLE_WEIGHTS]
    weights = [w for _, w in ROLE_WEIGHTS]
    population = {f"u_{i}": rng.choices(roles, weights)[0] for i in range(users)}
    plan: list[tuple[str, str]] = []
    for kind, action, n in _counts(total):
        plan.extend([(kind, action)] * n)
    rng.shuffle(plan)

    checks: list[Check] = []
    for kind, action in plan:
        pid = f"u_{rng.randrange(users)}"
        role = population[pid]
        attr: dict[str, Any]
        if kind == "member":
            rid, attr = _member_attr(rng, pid, role, action, population, roles)
        elif kind == "account":
            rid, attr = "acc_1", {"owner_count": rng.choice((1, 1, 2, 3))}
        elif kind == "billing":
            rid, attr = "acc_1", {}
        elif kind == "report":
            rid, attr = f"rep_{rng.randrange(500)}", {}
        else:
            rid, attr = f"obj_{rng.randrange(5000)}", {}
        checks.append(Check(pid, role, kind, rid, action, attr, decide(role, kind, action, attr)))
    return Workload(seed, population, checks)
