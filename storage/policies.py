"""Policy versions published to the database, their activations, and the feed replicas watch.

API (plain data in, plain data out):
    publish(versions, by) -> [{"name", "version", "digest", "outcome", "activated"}]
        versions: [{"name", "version", "digest", "source"}]; outcome is "published" or
        "unchanged". All or nothing: a known version with another digest raises
        VersionChanged and stores nothing. The highest new version of a name, when above
        every published one, is activated in the same transaction (as a higher file is in a
        policy folder); a rollback therefore holds until a newer version is published.
    activate(name, version, by) -> {"name", "version", "digest", "previous", "outcome"}
        raises NotFound for a version never published.
    state() -> {"generation", "versions": [{... "source"}], "active": {name: version}}
    generation() -> (max version id, max activation id): changes whenever anything is
        published or activated (both tables are append-only).

Fleet-wide audit events: publishing, activating and reloading belong to no account, so their
audit rows carry FLEET ("*") as account_id. Account ids are "acc_<hex>", so no account
route lists them; they are read with `fleet_events()` (GET /v1/policies/events).

Change feed (`PolicyFeed`): on PostgreSQL every publish and activation sends NOTIFY on
CHANNEL inside its transaction (delivered at commit, never for a rollback), and each
worker process keeps one LISTEN connection; on SQLite, which has no notifications, the
feed compares `generation()` every POLL_SECONDS.
"""

from __future__ import annotations

import builtins
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from pony.orm import desc
from pony.orm import max as query_max
from pony.orm import select as query

from rolebook.storage import notify
from rolebook.storage.audit import event_dict
from rolebook.storage.base import Repository, iso
from rolebook.storage.errors import NotFound, StorageError
from rolebook.storage.notify import Listener
from rolebook.storage.postgres import Limits

log = logging.getLogger("rolebook.storage.policies")
FLEET = "*"
CHANNEL = "rolebook_policies"
EVENTS = ("publish", "activate")
POLL_SECONDS = 0.5


class VersionChanged(StorageError):
    """A published version is immutable: the same name@version with another digest."""

    def __init__(self, changed: list[dict[str, Any]]) -> None:
        self.changed = changed
        super().__init__("; ".join(
            f"{c['name']}@{c['version']} is published with digest {c['published']}, this file "
            f"has {c['digest']}: a published version never changes, publish it as a new version"
            for c in changed))


def _version_dict(row: Any, with_source: bool = False) -> dict[str, Any]:
    out = {"name": row.name, "version": row.version, "digest": row.digest,
           "published_by": row.published_by, "published_at": iso(row.published_at)}
    if with_source:
        out["source"] = row.source
    return out


class PolicyVersions(Repository):
    def publish(self, versions: list[dict[str, Any]], by: str) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            db, now, out, changed = self.db, self.now(), [], []
            for v in versions:
                row = db.PolicyVersion.get(name=v["name"], version=v["version"])
                if row is not None and row.digest != v["digest"]:
                    changed.append({**_ref(v), "digest": v["digest"], "published": row.digest})
                out.append({**_ref(v), "digest": v["digest"], "activated": False,
                            "outcome": "published" if row is None else "unchanged"})
            if changed:
                raise VersionChanged(changed)
            new = [(v, o) for v, o in zip(versions, out, strict=True)
                   if o["outcome"] == "published"]
            # Per name, the highest before this publish and the highest it brings.
            top = {v["name"]: query_max(p.version for p in db.PolicyVersion
                                        if p.name == v["name"]) or 0 for v, _ in new}
            for v, _ in new:
                top[v["name"]] = builtins.max(top[v["name"]], v["version"])
            for v, o in new:
                db.PolicyVersion(name=v["name"], version=v["version"], digest=v["digest"],
                                 source=v["source"], published_by=by, published_at=now)
                o["activated"] = activated = top[v["name"]] == v["version"]
                if activated:
                    db.PolicyActivation(name=v["name"], version=v["version"], activated_by=by,
                                        activated_at=now)
                self._audit(FLEET, by, "policy.published", target=f"{v['name']}@{v['version']}",
                            after={"digest": v["digest"], "activated": activated},
                            policy=v["name"], policy_version=v["version"])
            if any(o["outcome"] == "published" for o in out):
                self._notify("publish")
            return out

        return self._write(run)

    def activate(self, name: str, version: int, by: str) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            db = self.db
            row = db.PolicyVersion.get(name=name, version=version)
            if row is None:
                raise NotFound(f"{name}@{version} is not published")
            previous = self._active_version(name)
            out = {"name": name, "version": version, "digest": row.digest,
                   "previous": previous and {"version": previous.version,
                                             "digest": previous.digest}}
            if previous is not None and previous.version == version:
                return {**out, "outcome": "unchanged"}
            db.PolicyActivation(name=name, version=version, activated_by=by,
                                activated_at=self.now())
            self._audit(FLEET, by, "policy.activated", target=f"{name}@{version}",
                        before=out["previous"], after={"version": version, "digest": row.digest},
                        policy=name, policy_version=version)
            self._notify("activate")
            return {**out, "outcome": "activated"}

        return self._write(run)

    def _active_version(self, name: str) -> Any:
        db = self.db
        last = db.PolicyActivation.select(lambda a: a.name == name).order_by(
            lambda a: desc(a.id)).first()
        if last is None:
            return None
        return db.PolicyVersion.get(name=name, version=last.version)

    def _notify(self, event: str) -> None:
        """Inside the transaction: PostgreSQL delivers it at commit, and drops it on rollback."""
        notify.notify(self.db, CHANNEL, json.dumps({"event": event}))

    def generation(self) -> tuple[int, int]:
        def run() -> tuple[int, int]:
            row = self.db.select(
                "SELECT (SELECT COALESCE(MAX(id), 0) FROM rb_policy_version),"
                " (SELECT COALESCE(MAX(id), 0) FROM rb_policy_activation)")[0]
            return int(row[0]), int(row[1])

        return self._read(run)

    def state(self) -> dict[str, Any]:
        """Everything a replica serves. The generation is read first: a change committed
        meanwhile is then loaded early and loaded again at the next look, never missed."""
        generation = self.generation()

        def run() -> dict[str, Any]:
            db = self.db
            versions = [_version_dict(p, True) for p in query(p for p in db.PolicyVersion)
                        .order_by(lambda p: (p.name, p.version))]
            active: dict[str, int] = {}
            for a in query(a for a in db.PolicyActivation).order_by(lambda a: a.id):
                active[a.name] = a.version
            return {"generation": generation, "versions": versions, "active": active}

        return self._read(run)

    def record_reload(self, by: str, before: str, after: str) -> None:
        """A replica re-read its policy folder: who asked, the snapshot digests around it."""
        self._write(lambda: self._audit(FLEET, by, "policy.reloaded",
                                        before={"snapshot_digest": before},
                                        after={"snapshot_digest": after}))

    def fleet_events(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest publish, activation and reload audit events, newest first."""
        def run() -> list[dict[str, Any]]:
            rows = query(e for e in self.db.AuditEvent if e.account_id == FLEET).order_by(
                lambda e: desc(e.id))[:limit]
            return [event_dict(e) for e in rows]

        return self._read(run)


def _ref(v: dict[str, Any]) -> dict[str, Any]:
    return {"name": v["name"], "version": v["version"]}


def valid_payload(payload: str) -> bool:
    try:
        data = json.loads(payload)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("event") in EVENTS


class PolicyFeed:
    """Calls `on_change` whenever policies may have been published or activated: on
    PostgreSQL from a Listener (and after every reconnection, since notifications sent while
    disconnected are lost), on SQLite from a poll every `poll_seconds`."""

    def __init__(self, connect: Callable[[], Any] | None, on_change: Callable[[], None],
                 poll_seconds: float = POLL_SECONDS) -> None:
        self.on_change, self.poll_seconds = on_change, poll_seconds
        self.stopped = threading.Event()
        self.listener = None if connect is None else Listener(
            connect, CHANNEL, "policy", self._notified, self._changed)
        self.connected = self.listener.connected if self.listener else threading.Event()
        self.thread = threading.Thread(target=self._poll, name="policy-feed", daemon=True)

    def start(self) -> PolicyFeed:
        (self.listener or self.thread).start()
        return self

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.stop()
            return
        self.stopped.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=5)

    def _poll(self) -> None:
        while not self.stopped.wait(self.poll_seconds):
            self._changed()

    def _notified(self, payloads: list[str]) -> None:
        for bad in (p for p in payloads if not valid_payload(p)):
            log.warning("ignoring an unexpected notification on %s: %.200r", CHANNEL, bad)
        if any(valid_payload(p) for p in payloads):
            self._changed()

    def _changed(self) -> None:
        try:
            self.on_change()
        except Exception:
            log.exception("could not load the published policies; the current set keeps serving")


def listen_connector(url: str, limits: Limits | None = None) -> Callable[[], Any] | None:
    """The policy feed's connection (None for SQLite: poll instead)."""
    return notify.listen_connector(url, "policy feed", limits)
