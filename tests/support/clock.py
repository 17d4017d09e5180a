"""Storage's clock under a test's control."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from rolebook.storage.base import utc_now

# Where a standing clock starts: far from real time, so nothing passes by accident.
START = datetime(2030, 1, 1, 12, 0, 0)


class Clock:
    """Storage's clock, moved on by the test instead of by sleeping.

    `Clock()` follows real time, moved on by `advance` (the app around storage, tokens and
    mail keep real time); `Clock(START)` stands still until advanced, for exact arithmetic
    on stored times.
    """

    def __init__(self, at: datetime | None = None) -> None:
        self._at, self._offset = at, timedelta(0)
        self._hook: tuple[str, Callable[[], object]] | None = None
        self._lock = threading.Lock()

    @property
    def now(self) -> datetime:
        with self._lock:
            return (self._at or utc_now()) + self._offset

    def advance(self, **delta: float) -> None:
        with self._lock:
            self._offset += timedelta(**delta)

    def call_once_inside(self, function: str, action: Callable[[], object]) -> None:
        """Run `action` when the time is next asked from within `function`, then no more."""
        self._hook = (function, action)

    def __call__(self) -> datetime:
        hook = self._hook
        if hook is not None and any(f.function == hook[0] for f in inspect.stack(context=0)):
            with self._lock:
                hook, self._hook = self._hook, None
            if hook is not None:  # not taken by another thread meanwhile
                hook[1]()
        return self.now

