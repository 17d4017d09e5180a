"""What each worker process of a replica serves, one small file per worker in the data dir.

A request reaches one worker, so a policy reload asked over HTTP reaches the
others the way an operator's SIGHUP does: the asking worker signals the
supervisor, which sends SIGHUP to every worker; each reloads and writes here
what it now serves, and the asking worker reads until every live worker has
reloaded since it asked. Files rather than pipes: a worker started meanwhile
writes its own once it is ready, a dead one's file goes with it (the supervisor
removes it), so nothing waits for a worker that is gone. Times are
`time.monotonic()`, one clock for every process of a host.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import orjson

from rolebook.engine import PolicyLoadError, Snapshot

FOLDER = "workers"
CONFIRM_SECONDS = 10.0


def line(snapshot: Snapshot, read_at: float, error: PolicyLoadError | None = None) -> dict:
    """What one worker serves, and when it last began reading its policies."""
    return {"pid": os.getpid(), "read_at": read_at, "snapshot_digest": snapshot.digest,
            "active": [p.ref for p in snapshot.all() if snapshot.is_active(p)],
            "error": str(error) if error else None,
            "errors": [p.as_dict() for p in error.problems] if error else []}


def reload_here(services) -> dict:
    """Reload this process's policies (a broken set leaves the old one serving) and say what
    it serves now."""
    read_at = time.monotonic()
    try:
        services.policies.reload()
    except PolicyLoadError as exc:
        return line(services.policies.snapshot, read_at, exc)
    return line(services.policies.snapshot, read_at)


class WorkerBoard:
    def __init__(self, folder: Path, supervisor: int):
        # supervisor: the process whose SIGHUP reaches every worker (the worker itself when
        # it is the only one).
        self.folder, self.supervisor = folder, supervisor

    @classmethod
    def fresh(cls, data_path: Path, supervisor: int) -> WorkerBoard:
        """An empty board: files of an earlier run name processes long gone."""
        folder = data_path / FOLDER
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return cls(folder, supervisor)

    def post(self, entry: dict) -> None:
        """This worker's file, replaced whole so a reader never sees half of it."""
        path = self.folder / f"{entry['pid']}.json"
        part = path.with_suffix(".part")
        part.write_bytes(orjson.dumps(entry))
        os.replace(part, path)

    def remove(self, pid: int) -> None:
        (self.folder / f"{pid}.json").unlink(missing_ok=True)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Its per-process gauges (policies served, last reload) leave /metrics with it.
            # Imported here: prometheus_client picks its mode at import, after serve sets it.
            from prometheus_client.multiprocess import mark_process_dead
            mark_process_dead(pid)

    def entries(self) -> list[dict]:
        """Every live worker's file (one killed but not yet reaped is left out)."""
        found = []
        for path in self.folder.glob("*.json"):
            try:
                entry = orjson.loads(path.read_bytes())
                os.kill(entry["pid"], 0)
            except (OSError, ValueError):  # removed meanwhile, or its process is gone
                continue
            found.append(entry)
        return sorted(found, key=lambda e: e["pid"])

    def reload_everywhere(self, timeout: float = CONFIRM_SECONDS) -> tuple[list[dict], bool]:
        """Have every worker reload; their files, and whether all confirmed within timeout."""
        if self.supervisor != os.getpid() and os.getppid() != self.supervisor:
            return self.entries(), False  # the supervisor is gone: no one can reach the others
        asked = time.monotonic()
        os.kill(self.supervisor, signal.SIGHUP)
        deadline = asked + timeout
        while True:
            entries = self.entries()
            if entries and all(e["read_at"] >= asked for e in entries):
                return entries, True
            if time.monotonic() >= deadline:
                return entries, False
            time.sleep(0.01)
