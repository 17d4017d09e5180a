"""Run calls at the same instant, each on its own thread, to provoke races (no sleeps)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def outcomes(*calls: Callable[[], Any], timeout: float = 120.0) -> list[tuple[str, Any]]:
    """Release every call together behind a barrier; ("ok", value) or ("err", exc), in order."""
    barrier = threading.Barrier(len(calls))
    results: list[tuple[str, Any]] = [("none", None)] * len(calls)

    def worker(i: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout)
            results[i] = ("ok", call())
        except Exception as e:  # the caller inspects it
            results[i] = ("err", e)

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a racing call hung"
    return results


def together(*calls: Callable[[], Any], timeout: float = 120.0) -> list[Any]:
    """As `outcomes`, for calls that should not raise: their values, in order."""
    results = outcomes(*calls, timeout=timeout)
    for kind, value in results:
        if kind == "err":
            raise value
    return [value for _, value in results]
