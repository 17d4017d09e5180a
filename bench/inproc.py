"""In-process systems: each turns the workload into its native requests once (untimed), then
decides a batch of them. The same batch function serves the agreement check and the timing.

Timing: single thread, batches of ``BATCH`` decisions, one ``perf_counter_ns`` pair per batch;
the per-decision figure of a batch is its time divided by its size (so the ~100 ns of timer
overhead is spread over the batch instead of dominating a sub-microsecond decision). p50/p99
are over those per-batch averages; decisions/s is total decisions over total timed time.
"""

from __future__ import annotations

import gc
import json
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.loopback import machine_busy_seconds
from bench.reference import ACTIONS, RANK, ROLES, decide
from bench.workload import Check

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
BATCH = 100
MIN_TIMED_S = 1.0  # passes over the workload are repeated until this much time is timed...
MAX_PASSES = 20  # ...but at most this many


class Unavailable(Exception):
    """The system cannot be set up here (missing package or module); the bench skips it."""


@dataclass
class System:
    name: str
    version: str
    prepare: Callable[[Sequence[Check]], list[Any]]
    run: Callable[[list[Any]], list[bool]]
    note: str = ""


# ---------------------------------------------------------------- reference (the floor)
def reference_system() -> System:
    def prepare(checks: Sequence[Check]) -> list[Any]:
        return [(c.role, c.kind, c.action, c.attr) for c in checks]

    def run(batch: list[Any]) -> list[bool]:
        return [decide(role, kind, action, attr) for role, kind, action, attr in batch]

    return System("reference", "bench/reference.py", prepare, run, "hand-written Python, floor")


# ---------------------------------------------------------------- rolebook
def rolebook_system() -> System:
    try:
        from rolebook.engine import load_snapshot  # type: ignore[import-not-found]
    except Exception as exc:  # the engine is still being written; skip, don't crash
        raise Unavailable(f"cannot import rolebook.engine.load_snapshot: {exc!r}") from exc
    try:
        snapshot = load_snapshot(str(ROOT / "policies"))
        policy = snapshot.get("convert")
    except Exception as exc:
        raise Unavailable(f"cannot load policies/convert: {exc!r}") from exc
    check = policy.check
    version = str(getattr(policy, "version", "?"))

    def prepare(checks: Sequence[Check]) -> list[Any]:
        return [(c.principal_id, c.role, c.kind, c.action, c.attr) for c in checks]

    def run(batch: list[Any]) -> list[bool]:
        return [check(p, r, k, a, attr).allowed for p, r, k, a, attr in batch]

    return System("rolebook", f"engine, convert v{version}", prepare, run, "policy.check()")


# ---------------------------------------------------------------- Cedar (cedarpy)
CEDAR_TYPES = {
    "account": "Account",
    "billing": "Billing",
    "audit": "Audit",
    "member": "Member",
    "invitation": "Invitation",
    "report": "Report",
    "object": "Object",
}
ROLE_VALUED = {"target_role", "new_role", "role"}


def cedar_entities(users: dict[str, str]) -> list[dict[str, Any]]:
    below = {"read": [], "edit": ["read"], "owner": ["edit"]}
    ents: list[dict[str, Any]] = [
        {
            "uid": {"type": "Role", "id": role},
            "attrs": {},
            "parents": [{"type": "Role", "id": p} for p in below[role]],
        }
        for role in ROLES
    ]
    ents.extend(
        {"uid": {"type": "User", "id": uid}, "attrs": {}, "parents": [{"type": "Role", "id": role}]}
        for uid, role in users.items()
    )
    return ents


def cedar_context(attr: dict[str, Any]) -> str:
    ctx = {
        k: ({"__entity": {"type": "Role", "id": v}} if k in ROLE_VALUED else v)
        for k, v in attr.items()
    }
    return json.dumps(ctx, separators=(",", ":"))


def cedar_system(users: dict[str, str]) -> System:
    try:
        import cedarpy
    except ImportError as exc:
        raise Unavailable("cedarpy is not installed") from exc
    from importlib.metadata import version as pkg_version

    policies = cedarpy.PolicySet.from_str((HERE / "cedar" / "convert.cedar").read_text())
    entities = cedarpy.Entities.from_json_str(json.dumps(cedar_entities(users)))
    authorize = cedarpy.is_authorized_batch
    allow = cedarpy.Decision.Allow

    def prepare(checks: Sequence[Check]) -> list[Any]:
        # Pre-rendered requests: {type, id} dicts skip Cedar's EUID parser (measured ~15%
        # faster than 'User::"u_7"' strings); context as a JSON string passes through cedarpy.
        return [
            {
                "principal": {"type": "User", "id": c.principal_id},
                "action": {"type": "Action", "id": c.action},
                "resource": {"type": CEDAR_TYPES[c.kind], "id": c.resource_id},
                "context": cedar_context(c.attr),
            }
            for c in checks
        ]

    def run(batch: list[Any]) -> list[bool]:
        return [r.decision == allow for r in authorize(batch, policies, entities)]

    return System(
        "cedar",
        f"cedarpy {pkg_version('cedarpy')}",
        prepare,
        run,
        "PolicySet + Entities handles, is_authorized_batch",
    )


# ---------------------------------------------------------------- Casbin (pycasbin)
def casbin_system(users: dict[str, str]) -> System:
    try:
        import casbin
    except ImportError as exc:
        raise Unavailable("casbin is not installed") from exc
    from importlib.metadata import version as pkg_version

    enforcer = casbin.FastEnforcer(
        str(HERE / "casbin" / "model.conf"),
        str(HERE / "casbin" / "policy.csv"),
        cache_key_order=[0, 1],
    )
    rank = RANK.__getitem__
    enforcer.add_function("rank", lambda role: rank(role))
    enforce = enforcer.enforce

    def prepare(checks: Sequence[Check]) -> list[Any]:
        subs = {uid: SimpleNamespace(id=uid, role=role) for uid, role in users.items()}
        return [
            (c.kind, c.action, subs[c.principal_id], SimpleNamespace(id=c.resource_id, **c.attr))
            for c in checks
        ]

    def run(batch: list[Any]) -> list[bool]:
        return [enforce(kind, act, sub, obj) for kind, act, sub, obj in batch]

    return System(
        "casbin",
        f"pycasbin {pkg_version('casbin')}",
        prepare,
        run,
        "FastEnforcer(cache_key_order=[kind, act]), eval() ABAC conditions",
    )


# ---------------------------------------------------------------- exhaustive model checks
def model_checks(users: dict[str, str]) -> list[Check]:
    """Every role x kind x action x fact combination the conditions can tell apart."""
    by_role: dict[str, str] = {}
    for uid, role in users.items():
        by_role.setdefault(role, uid)
    out: list[Check] = []
    for role in ROLES:
        pid = by_role[role]
        for kind, actions in ACTIONS.items():
            attrs: list[dict[str, Any]]
            if kind == "member":
                attrs = [
                    {"target_role": t, "new_role": n, "owner_count": oc, "is_self": s}
                    for t in ROLES
                    for n in ROLES
                    for oc in (0, 1, 2, 3)
                    for s in (False, True)
                ]
            elif kind == "invitation":
                attrs = [{"role": r} for r in ROLES]
            elif kind == "account":
                attrs = [{"owner_count": oc} for oc in (1, 2)]
            else:
                attrs = [{}]
            for action in actions:
                for attr in attrs:
                    rid = pid if attr.get("is_self") else "x_1"
                    out.append(
                        Check(pid, role, kind, rid, action, attr, decide(role, kind, action, attr))
                    )
    return out


# ---------------------------------------------------------------- agreement and timing
@dataclass
class Agreement:
    checked: int
    agreed: int
    seconds: float
    complete: bool
    first_mismatches: list[str]

    @property
    def ok(self) -> bool:
        return self.complete and self.agreed == self.checked


def agreement(
    system: System, native: list[Any], checks: Sequence[Check], budget_s: float
) -> Agreement:
    """Decide every check once (batches of BATCH) and compare with the reference."""
    agreed = 0
    mismatches: list[str] = []
    start = time.monotonic()
    deadline = start + budget_s
    done = 0
    for i in range(0, len(native), BATCH):
        got = system.run(native[i : i + BATCH])
        for j, allowed in enumerate(got):
            c = checks[i + j]
            if allowed == c.expected:
                agreed += 1
            elif len(mismatches) < 5:
                mismatches.append(
                    f"{c.role} {c.kind}:{c.action} {c.attr} -> {allowed}, reference {c.expected}"
                )
        done = i + len(got)
        if time.monotonic() > deadline:
            break
    return Agreement(done, agreed, time.monotonic() - start, done == len(native), mismatches)


@dataclass
class Timing:
    decisions: int
    seconds: float
    per_s: float
    p50_ns: float
    p99_ns: float
    cores: float
    other_cores: float
    batches: int


def _pct(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, round(q / 100 * (len(sorted_vals) - 1))))
    return sorted_vals[k]


def time_system(system: System, native: list[Any], budget_s: float, warmup: int = 2000) -> Timing:
    """Time batches over the workload in order: one pass, repeated while less than MIN_TIMED_S
    was timed (at most MAX_PASSES), and never more than budget_s."""
    run = system.run
    for i in range(0, min(warmup, len(native)), BATCH):
        run(native[i : i + BATCH])
    batches = [native[i : i + BATCH] for i in range(0, len(native), BATCH)]
    samples: list[float] = []
    total_ns = 0
    decisions = 0
    clock = time.perf_counter_ns
    budget_ns = int(budget_s * 1e9)
    gc.collect()
    busy0 = machine_busy_seconds()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = clock()
    min_ns = int(min(budget_s, MIN_TIMED_S) * 1e9)
    for _ in range(MAX_PASSES):  # fast systems get more passes, so a preemption weighs less
        for batch in batches:
            t0 = clock()
            run(batch)
            dt = clock() - t0
            samples.append(dt / len(batch))
            total_ns += dt
            decisions += len(batch)
            if total_ns >= budget_ns:
                break
        if total_ns >= min_ns:
            break
    wall = (clock() - wall0) / 1e9
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    others = max(0.0, machine_busy_seconds() - busy0 - cpu) / wall if wall > 0 else float("nan")
    samples.sort()
    return Timing(
        decisions=decisions,
        seconds=total_ns / 1e9,
        per_s=decisions / (total_ns / 1e9) if total_ns else float("nan"),
        p50_ns=_pct(samples, 50),
        p99_ns=_pct(samples, 99),
        cores=cpu / wall if wall > 0 else float("nan"),
        other_cores=others,
        batches=len(samples),
    )
