"""Decision logs: one JSON line per decision, written off the request path.

Requests only put a dict on a bounded queue; a writer thread encodes and
writes. When the queue is full the entry is dropped and counted, so a slow
disk never slows a decision.
"""

from __future__ import annotations

import queue
import sys
import threading
from pathlib import Path

import orjson

_STOP = object()
_VIEWS: dict[tuple, bytes] = {}  # a decision's encoded fields, by (effect, rule, reason)


class DecisionLog:
    def __init__(self, sink: str, data_dir: Path, on_drop=None):
        self.enabled = sink != "off"
        self.dropped = 0
        self._on_drop = on_drop
        self._queue: queue.Queue = queue.Queue(maxsize=100_000)
        self.path = data_dir / "decisions.log" if sink == "file" else None
        self._thread = None
        if self.enabled:
            self._thread = threading.Thread(target=self._write_forever, name="decision-log",
                                            daemon=True)
            self._thread.start()

    def record(self, entry: dict) -> None:
        """One decision, as one line."""
        self._put(entry)

    def record_answer(self, common: dict, results: list[dict]) -> None:
        """A whole /v1/check answer: one queue item, expanded into a line per decision later."""
        self._put((common, results))

    def _put(self, item) -> None:
        if not self.enabled:
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            if self._on_drop:
                self._on_drop()

    def _open(self):
        if self.path is None:
            return sys.stdout.buffer
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return open(self.path, "ab")

    def _write_forever(self) -> None:
        out = self._open()
        while True:
            item = self._queue.get()
            batch = [item]
            while len(batch) < 1000:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(b is _STOP for b in batch)
            out.write(b"".join(_encode(b) for b in batch if b is not _STOP))
            out.flush()
            for _ in batch:
                self._queue.task_done()
            if stop:
                return

    def flush(self) -> None:
        """Wait until everything recorded so far is written (tests, shutdown)."""
        if self.enabled:
            self._queue.join()

    def close(self) -> None:
        if self._thread and self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout=5)


def _encode(item) -> bytes:
    """JSON lines; an answer's shared fields are encoded once, not once per decision."""
    if isinstance(item, dict):
        return orjson.dumps(item) + b"\n"
    common, results = item
    head = orjson.dumps(common)[:-1] + b',"kind":'
    dumps, parts = orjson.dumps, []
    for r in results:
        resource = head + dumps(r["kind"]) + b',"resource_id":' + dumps(r.get("id")) + \
            b',"action":'
        for action, d in r["actions"].items():
            parts += (resource, dumps(action), _view(d["effect"], d["rule"], d["reason"]))
    return b"".join(parts)


def _view(effect: str, rule: str, reason: str) -> bytes:
    key = (effect, rule, reason)
    encoded = _VIEWS.get(key)
    if encoded is None:
        if len(_VIEWS) > 10_000:  # reasons that name facts vary; keep the memo small
            _VIEWS.clear()
        encoded = _VIEWS[key] = b"," + orjson.dumps(
            {"effect": effect, "rule": rule, "reason": reason})[1:] + b"\n"
    return encoded
