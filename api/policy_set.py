"""The running policies: one Snapshot reference, swapped whole on reload.

Where the versions come from is a source: a policy folder (`dir`, one machine) or the
versions published to the database (`database`, every replica serves the same ones).
A reload that finds any problem leaves the running Snapshot serving and remembers the
problems, which /readyz, /v1/policies and the reload answer report. A request reads
`snapshot` once, so it never sees two sets.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

from rolebook.engine import (
    Policy,
    PolicyLoadError,
    PolicyProblem,
    Snapshot,
    build,
    load_snapshot,
)

log = logging.getLogger("rolebook.policies")


class DirSource:
    """The policy folder; it changes only when someone reloads."""

    kind = "dir"

    def __init__(self, policy_dir: str, pins: dict[str, int]):
        self.policy_dir, self.pins = policy_dir, pins
        self.where = policy_dir

    def load(self) -> Snapshot:
        return load_snapshot(self.policy_dir, self.pins)

    def changed(self) -> bool:
        return False


class DatabaseSource:
    """The versions published with `rolebook policy publish`, active as activated.

    Each version is compiled once per process (by digest): a swap after a publish compiles
    only the new version. `--pin` still overrides an activation on this replica."""

    kind = "database"

    def __init__(self, versions, pins: dict[str, int], where: str):
        self.versions, self.pins, self.where = versions, pins, where
        self.generation: tuple[int, int] | None = None  # of the last load tried
        self._compiled: dict[str, Policy] = {}

    def load(self) -> Snapshot:
        state = self.versions.state()
        self.generation = state["generation"]
        if not state["versions"]:
            raise PolicyLoadError([PolicyProblem(self.where, 1, 1, "$", "no policy version is "
                                           "published in this database: run `rolebook policy "
                                           "publish` first", "configuration")])
        policies, problems = [], []
        for row in state["versions"]:
            policy = self._compiled.get(row["digest"])
            if policy is None:
                policy, found = _compile(row)
                problems += found
            if policy is not None:
                self._compiled[row["digest"]] = policy
                policies.append(policy)
        if problems:
            raise PolicyLoadError(problems)
        return Snapshot(policies, {**state["active"], **self.pins})

    def changed(self) -> bool:
        return self.versions.generation() != self.generation


def _compile(row: dict) -> tuple[Policy | None, list[PolicyProblem]]:
    file = f"db:/{row['name']}/v{row['version']}.yaml"
    outcome = build(file, row["source"])
    policy = outcome.policy
    if policy is not None and policy.digest != row["digest"]:
        return None, [PolicyProblem(file, 1, 1, "$", "the stored source has digest "
                                    f"{policy.digest}, not the published {row['digest']}",
                                    "configuration")]
    return policy, outcome.problems


class PolicySet:
    def __init__(self, source: DirSource | DatabaseSource, default_policy: str):
        self.source, self.default_policy = source, default_policy
        self.on_swap: list[Callable[[Snapshot], None]] = []
        self.on_reload: list[Callable[[bool], None]] = []  # each attempt: did it succeed
        self.snapshot: Snapshot = self._load()
        self.last_error: PolicyLoadError | None = None
        self._lock = threading.Lock()
        self._feed = None

    def _load(self) -> Snapshot:
        snapshot = self.source.load()
        if self.default_policy not in snapshot.versions:
            raise PolicyLoadError([PolicyProblem(
                self.source.where, 1, 1, "$", f"the default policy {self.default_policy!r} is "
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
                for reloaded in self.on_reload:
                    reloaded(False)
                raise
            self.snapshot, self.last_error = snapshot, None
            log.info("policies reloaded from %s %s: %s", self.source.kind, self.source.where,
                     _refs(snapshot))
        for reloaded in self.on_reload:
            reloaded(True)
        for swapped in self.on_swap:
            swapped(snapshot)
        return snapshot

    def refresh(self) -> None:
        """Reload when the source has changed since the last load tried (the feed calls this)."""
        if self.source.changed():
            with contextlib.suppress(PolicyLoadError):  # logged; /readyz and /v1/policies say so
                self.reload()

    def follow(self, feed_factory: Callable[[Callable[[], None]], object]) -> None:
        """Start a feed that calls refresh() on every change (database source only)."""
        self._feed = feed_factory(self.refresh).start()

    def close(self) -> None:
        if self._feed is not None:
            self._feed.stop()

    def for_account(self, account: dict, snapshot: Snapshot | None = None) -> Policy | None:
        """The version an account is evaluated under: its pinned one, or the active one."""
        try:
            return (snapshot or self.snapshot).get(account["policy"],
                                                   account.get("policy_version"))
        except KeyError:
            return None


def source_for(config, store=None) -> DirSource | DatabaseSource:
    """The configured source; the database one reads through `store`."""
    if config.policy_source == "database":
        return DatabaseSource(store.policies, config.pins, "(published policies)")
    return DirSource(config.policy_dir, config.pins)


def _refs(snapshot: Snapshot) -> str:
    return ", ".join(f"{p.ref} {p.digest[:19]}" for p in snapshot.all())
