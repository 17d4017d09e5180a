"""The engine in process: the same compiled policies and Decisions `rolebook serve` answers with,
for a Python service that wants a decision in microseconds instead of a network round trip.

Facts the service fills from storage over HTTP (a member's role, owner counts) are the caller's
to give here: in process there is no storage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rolebook.engine import Decision, Policy, Snapshot, diff, load_snapshot, matrix
from rolebook.engine.check_request import answer
from rolebook.engine.diff import Diff


def load(path: str | Path = "policies", pins: Mapping[str, int] | None = None) -> Policies:
    """Compile every `<name>/v<N>.yaml` below `path`; PolicyLoadError lists every problem.

    `pins` fixes the active version of a policy (`{"convert": 1}`); otherwise its highest is.
    """
    return Policies(load_snapshot(path, dict(pins or {})))


class Policies:
    """An immutable set of compiled policy versions; safe to share between threads."""

    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot

    def get(self, policy: str, version: int | None = None) -> Policy:
        """One compiled version (default: the active one); KeyError when not loaded."""
        return self.snapshot.get(policy, version)

    @property
    def refs(self) -> list[str]:
        """Every loaded `name@version`."""
        return [p.ref for p in self.snapshot.all()]

    def check(self, policy: str, principal: Mapping[str, str], kind: str, action: str, *,
              resource_id: str | None = None, attr: Mapping[str, Any] | None = None,
              version: int | None = None) -> Decision:
        """May `principal` ({"id", "role"}) do `action` on a resource of `kind`?

        Never raises for an unknown role, kind or action: that is a deny whose reason says so.
        """
        return self.get(policy, version).check(principal["id"], principal["role"], kind, action,
                                               attr, resource_id)

    def check_many(self, policy: str, principal: Mapping[str, str],
                   resources: Iterable[Mapping[str, Any]], *,
                   version: int | None = None) -> list[dict[str, Decision]]:
        """One principal, many resources ({"kind", "id"?, "attr"?, "actions"}): for each
        resource, its Decision per action, in order."""
        return self.get(policy, version).check_batch(principal["id"], principal["role"],
                                                     list(resources))

    def explain(self, policy: str, principal: Mapping[str, str], kind: str, action: str, *,
                resource_id: str | None = None, attr: Mapping[str, Any] | None = None,
                version: int | None = None) -> tuple[Decision, list[dict]]:
        """The Decision, and each rule that was tried with its condition's values."""
        return self.get(policy, version).explain(principal["id"], principal["role"], kind,
                                                 action, attr, resource_id)

    def answer(self, body: Mapping[str, Any], default_policy: str,
               explain: bool = False) -> dict:
        """A whole `/v1/check` body, answered as `rolebook check` does (principal.role given)."""
        return answer(self.snapshot, dict(body), default_policy, explain)

    def matrix(self, policy: str, version: int | None = None) -> dict:
        """The role by kind/action table of one version, as `rolebook policy matrix --format
        json` prints it."""
        return matrix.table(self.get(policy, version))

    def diff(self, policy: str, a: int, b: int) -> Diff:
        """Every case whose decision differs between two versions of one policy."""
        return diff.diff(self.get(policy, a), self.get(policy, b))
