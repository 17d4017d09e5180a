"""Impact of a candidate policy version on real traffic: replay a decision log against it and
report every decision whose effect would change, grouped so a reviewer can read it.

The log is the service's own (one JSON line per request, with each decision's facts; see
rolebook.api.decision_log). Pure: lines in, a report out; the caller reads the file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from rolebook.engine import Policy

EXAMPLES = 3
BROKEN_SHOWN = 20


@dataclass
class Group:
    """Decisions of one kind/action that flip the same way."""

    kind: str
    action: str
    before: str
    after: str
    count: int = 0
    rules: Counter = field(default_factory=Counter)  # (rule before, rule after) → count
    examples: list[dict] = field(default_factory=list)


@dataclass
class Impact:
    candidate: str
    digest: str
    lines: int = 0
    replayed: int = 0  # decisions re-evaluated
    other_policies: int = 0  # lines of other policies
    before_since: int = 0
    not_replayable: int = 0  # lines whose facts were left out (oversized events)
    broken: list[tuple[int, str]] = field(default_factory=list)
    broken_count: int = 0
    groups: dict[tuple, Group] = field(default_factory=dict)

    @property
    def flipped(self) -> int:
        return sum(g.count for g in self.groups.values())

    def as_dict(self) -> dict:
        return {
            "candidate": self.candidate, "digest": self.digest, "lines": self.lines,
            "replayed": self.replayed, "flipped": self.flipped,
            "skipped": {"other_policies": self.other_policies,
                        "before_since": self.before_since,
                        "not_replayable": self.not_replayable, "broken": self.broken_count},
            "broken_lines": [{"line": n, "reason": r} for n, r in self.broken],
            "changes": [{"kind": g.kind, "action": g.action, "before": g.before,
                         "after": g.after, "count": g.count,
                         "rules": [{"before": b, "after": a, "count": c}
                                   for (b, a), c in g.rules.most_common()],
                         "examples": g.examples}
                        for g in sorted(self.groups.values(), key=lambda g: -g.count)],
        }


def replay(lines: Iterable[bytes | str], candidate: Policy, since: str | None = None) -> Impact:
    """Re-decide every logged decision of `candidate.name` under `candidate`. `since` is an
    ISO-8601 UTC time ending in Z; earlier lines are skipped."""
    impact = Impact(candidate.ref, candidate.digest)
    check, name = candidate.check, candidate.name
    prefix = name + "@"
    groups = impact.groups
    for number, line in enumerate(lines, 1):
        impact.lines = number
        try:
            event = orjson.loads(line)
            if not event["policy"].startswith(prefix):
                impact.other_policies += 1
                continue
            if since is not None and event["time"] < since:
                impact.before_since += 1
                continue
            if event.get("facts_omitted"):
                impact.not_replayable += 1
                continue
            principal = event["principal"]
            pid, role = principal["id"], principal["role"]
            decided = []
            for resource in event["resources"]:
                kind, rid, attr = resource["kind"], resource.get("id"), resource.get("attr")
                for action, before in resource["actions"].items():
                    decided.append((kind, action, before["effect"], before["rule"],
                                    check(pid, role, kind, action, attr, rid)))
                for action in resource.get("undefined_actions", ()):
                    decided.append((kind, action, "deny", None,
                                    check(pid, role, kind, action, attr, rid)))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            impact.broken_count += 1
            if len(impact.broken) < BROKEN_SHOWN:
                impact.broken.append((number, _describe(exc)))
            continue
        impact.replayed += len(decided)
        for kind, action, effect, rule, after in decided:
            if after.effect == effect:
                continue
            key = (kind, action, effect, after.effect)
            group = groups.get(key)
            if group is None:
                group = groups[key] = Group(kind, action, effect, after.effect)
            group.count += 1
            group.rules[(rule, after.rule)] += 1
            if len(group.examples) < EXAMPLES:
                group.examples.append({"principal": pid, "role": role,
                                       "account_id": event.get("account_id"),
                                       "decision_id": event.get("decision_id")})
    return impact


def _describe(exc: Exception) -> str:
    if isinstance(exc, orjson.JSONDecodeError):
        return "not JSON"
    if isinstance(exc, KeyError):
        return f"not a decision-log line (no {exc.args[0]!r})"
    return f"not a decision-log line ({exc})"


def render(impact: Impact) -> str:
    out = [f"replayed {impact.replayed:,} decisions from {impact.lines:,} log lines against "
           f"{impact.candidate} {impact.digest}"]
    if not impact.groups:
        out.append("no decision flips")
    else:
        share = impact.flipped / impact.replayed if impact.replayed else 0
        out.append(f"{impact.flipped:,} decisions flip ({share:.2%}):")
        for g in sorted(impact.groups.values(), key=lambda g: -g.count):
            out.append(f"  {g.kind} {g.action}: {g.before} -> {g.after}  {g.count:,}")
            for (before, after), count in g.rules.most_common():
                out.append(f"    {before or '(undefined action)'} -> {after}  {count:,}")
            examples = ", ".join(f"{e['principal']} ({e['role']}) in {e['account_id']}"
                                 for e in g.examples)
            out.append(f"    e.g. {examples}")
    skipped = [f"{n:,} {what}" for n, what in (
        (impact.other_policies, "lines of other policies"),
        (impact.before_since, "lines before --since"),
        (impact.not_replayable, "lines without their facts (oversized events)"),
        (impact.broken_count, "broken or foreign lines")) if n]
    if skipped:
        out.append("skipped: " + ", ".join(skipped))
    out += [f"  line {n}: {reason}" for n, reason in impact.broken]
    return "\n".join(out)
