"""The running policies: one Snapshot reference, swapped whole on reload.

A reload that finds any problem leaves the running Snapshot serving and
remembers the problems, which /readyz and the reload answer report.
"""

from __future__ import annotations

import logging
import threading

from rolebook.engine import Policy, PolicyLoadError, PolicyProblem, Snapshot, load_snapshot

log = logging.getLogger("rolebook.policies")


class PolicySet:
    def __init__(self, policy_dir: str, pins: dict[str, int], default_policy: str):
        self.policy_dir, self.pins, self.default_policy = policy_dir, pins, default_policy
        self.snapshot: Snapshot = self._load()
        self.last_error: PolicyLoadError | None = None
        self._lock = threading.Lock()

    def _load(self) -> Snapshot:
        snapshot = load_snapshot(self.policy_dir, self.pins)
        if self.default_policy not in snapshot.versions:
            raise PolicyLoadError([PolicyProblem(
                self.policy_dir, 1, 1, "$", f"the default policy {self.default_policy!r} is "
                f"not among the loaded ones ({', '.join(sorted(snapshot.versions))})",
                "configuration")])
        return snapshot

    def reload(self) -> Snapshot:
        """Build a whole new Snapshot; on failure keep the old one and raise."""
        with self._lock:
            try:
                snapshot = self._load()
            except PolicyLoadError as exc:
                self.last_error = exc
                log.error("policy reload failed, still serving %s: %s",
                          _refs(self.snapshot), exc)
                raise
            self.snapshot, self.last_error = snapshot, None
            log.info("policies reloaded: %s", _refs(snapshot))
            return snapshot

    def for_account(self, account: dict) -> Policy | None:
        """The version an account is evaluated under: its pinned one, or the active one."""
        try:
            return self.snapshot.get(account["policy"], account.get("policy_version"))
        except KeyError:
            return None


def _refs(snapshot: Snapshot) -> str:
    return ", ".join(f"{p.ref} {p.digest[:19]}" for p in snapshot.all())
