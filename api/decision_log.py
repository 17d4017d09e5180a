"""Decision log: one JSON line per request (a /v1/check answer, or one decision an operation
made), with its decisions nested and the facts they used, so `rolebook policy impact` can replay
it against a candidate policy version.

A line: time (UTC, Z), decision_id, request_id, instance (host, pid, version), caller,
account_id, principal {id, role}, policy (name@version), digest, latency_ns, and resources, each
{kind, id, attr, actions: {action: {effect, rule, reason}}}; actions the policy does not define
are listed once under `undefined_actions` (all denied) instead of repeating a decision each.

Requests encode their line and hand it to a writer thread (api/line_writer.py), bounded in
bytes. When that bound is reached the line is dropped and counted, so a slow disk never slows a
decision. The
file is reopened when it was rotated away (logrotate's rename mode), as WatchedFileHandler does.
A `shipper` (api/decision_shipper.py) gets every line too, with a buffer of its own.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

import orjson

from rolebook.api import process_id
from rolebook.api.auth import Caller
from rolebook.api.line_writer import LineWriter
from rolebook.api.request_context import REQUEST_ID
from rolebook.api.timestamps import utc_stamp

MAX_QUEUED_BYTES = 64 * 1024 * 1024
MAX_EVENT_BYTES = 1024 * 1024  # larger events keep their effects and rules, not their facts
NONE: frozenset[str] = frozenset()  # the actions of a kind the policy does not define


def _instance() -> dict:
    try:
        version = metadata.version("rolebook")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {"host": socket.gethostname(), "pid": os.getpid(), "version": version}


class DecisionLog:
    def __init__(self, sink: str, data_dir: Path, on_drop=None,
                 max_queued_bytes: int = MAX_QUEUED_BYTES, shipper=None):
        self.local = sink != "off"  # a file or stdout
        self.shipper = shipper
        self.enabled = self.local or shipper is not None
        self.dropped = 0
        self._on_drop = on_drop
        self._max_bytes = max_queued_bytes
        self._queued_bytes = 0
        self._lock = threading.Lock()
        self.path = data_dir / "decisions.log" if sink == "file" else None
        self._instance = None
        self._writer = LineWriter(self._open, self._rotated, self._written,
                                  name="decision-log") if self.local else None

    def record(self, head: dict, resources: list[dict]) -> None:
        """One request's decisions: `head` holds the shared fields, `resources` the nested
        decisions with their facts (see the module docstring)."""
        if not self.enabled:
            return
        if self._instance is None or self._instance["pid"] != process_id.pid():  # after fork
            self._instance = _instance()
        event = {"time": utc_stamp(time.time(), 6), **head, "request_id": REQUEST_ID.get(),
                 "instance": self._instance, "resources": resources}
        line = orjson.dumps(event) + b"\n"
        if len(line) > MAX_EVENT_BYTES:
            event["resources"] = [_without_facts(r) for r in resources]
            event["facts_omitted"] = True
            line = orjson.dumps(event) + b"\n"
        if self.shipper is not None:
            self.shipper.offer(line)
        if not self.local:
            return
        with self._lock:
            if self._queued_bytes + len(line) > self._max_bytes:
                self.dropped += 1
                full = True
            else:
                self._queued_bytes += len(line)
                full = False
        if full:
            if self._on_drop:
                self._on_drop()
            return
        self._writer.put(line)

    def _open(self):
        if self.path is None:
            return sys.stdout.buffer
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return open(self.path, "ab")

    def _rotated(self, out) -> bool:
        """The path no longer names the open file (renamed or removed by log rotation)."""
        if self.path is None:
            return False
        try:
            return os.stat(self.path).st_ino != os.fstat(out.fileno()).st_ino
        except FileNotFoundError:
            return True

    def _written(self, size: int) -> None:
        with self._lock:
            self._queued_bytes -= size

    def flush(self) -> None:
        """Wait until everything recorded so far is written to the file or stdout (tests, the
        impact replay); the HTTP sink is not waited for."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self.shipper is not None:
            self.shipper.close()


def log_context(decision_id: str, caller: Caller, principal: dict, account_id: str | None,
                policy_ref: str, digest: str, latency_ns: int) -> dict:
    """The fields of one request's decision-log line besides its decisions."""
    return {"decision_id": decision_id, "caller": caller.id, "principal": principal,
            "account_id": account_id, "policy": policy_ref, "digest": digest,
            "latency_ns": latency_ns}


def resource_entry(kind: str, rid, attr: dict | None, actions: dict,
                   known: frozenset[str] | set[str]) -> dict:
    """A resource's decisions as the log holds them; `actions` maps action → decision view
    (shared, not copied: the line is encoded before anything changes it), `known` is the set of
    the policy's actions for this kind (`Policy.action_sets`). At 50 resources a request, testing
    each action in Python was a sixth of the request's time."""
    if known.issuperset(actions):
        return {"kind": kind, "id": rid, "attr": attr or {}, "actions": actions}
    return {"kind": kind, "id": rid, "attr": attr or {},
            "undefined_actions": [a for a in actions if a not in known],
            "actions": {a: d for a, d in actions.items() if a in known}}


def _without_facts(resource: dict) -> dict:
    return {**resource, "attr": {},
            "actions": {a: {"effect": d["effect"], "rule": d["rule"]}
                        for a, d in resource["actions"].items()}}
