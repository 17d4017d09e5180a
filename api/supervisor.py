"""The parent of a replica's worker processes: starts them, replaces any that dies, passes
signals on.

It waits for signals synchronously (`sigtimedwait`, everything blocked) instead
of in handlers, so a child's death, an operator's signal and a pending restart
are handled one at a time by plain code. A worker that dies is started again at
once; one that keeps dying soon after starting waits longer each time (0.5 s,
1 s, 2 s ... up to 30 s), so a worker that cannot start does not spin a core.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from rolebook.api.worker_board import WorkerBoard

log = logging.getLogger("rolebook.server")
WATCHED = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}
HEALTHY_SECONDS = 10.0  # a worker that lived this long was not failing at start
FIRST_DELAY, MAX_DELAY = 0.5, 30.0


def restart_delay(deaths: int) -> float:
    """Seconds before starting a worker again after `deaths` early deaths in a row."""
    return 0.0 if deaths <= 1 else min(MAX_DELAY, FIRST_DELAY * 2 ** (deaths - 2))


@dataclass
class Slot:
    index: int
    started: float = 0.0
    deaths: int = 0  # in a row, each within HEALTHY_SECONDS of starting
    due: float | None = None  # when its next process starts


def _how(code: int) -> str:
    """How a worker ended, from its exit code (negative: the signal that killed it)."""
    if code >= 0:
        return f"exited with status {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"


class Supervisor:
    def __init__(self, workers: int, start: Callable[[int], int], board: WorkerBoard):
        # start(index) forks worker `index` and returns its pid (in the parent only).
        self.start, self.board = start, board
        self.slots = [Slot(i, due=0.0) for i in range(workers)]
        self.children: dict[int, Slot] = {}
        self.stopping, self.status = False, 0

    def run(self) -> int:
        """Until every worker has stopped after SIGTERM or SIGINT; their first nonzero code."""
        # Blocked before the first fork, so each worker also starts with them held until its
        # handlers are in place (a SIGTERM while starting would otherwise kill it outright).
        signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
        self._start_due()
        while self.children or self._next_due() is not None:
            due = self._next_due()
            if due is None:
                info = signal.sigwaitinfo(WATCHED)
            else:
                info = signal.sigtimedwait(WATCHED, max(0.0, due - time.monotonic()))
            if info is not None:
                self._handle(info.si_signo)
            self._start_due()
        return self.status

    def _handle(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            self._reap()
            return
        if signum != signal.SIGHUP:
            self.stopping = True
            for slot in self.slots:
                slot.due = None
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = self.children.pop(pid, None)
            if slot is None:
                continue
            self.board.remove(pid)
            code = os.waitstatus_to_exitcode(status)
            if self.stopping:
                self.status = self.status or code
                continue
            self._schedule(slot, pid, code)

    def _schedule(self, slot: Slot, pid: int, code: int) -> None:
        now = time.monotonic()
        lived = now - slot.started
        slot.deaths = slot.deaths + 1 if lived < HEALTHY_SECONDS else 1
        delay = restart_delay(slot.deaths)
        slot.due = now + delay
        when = "now" if not delay else \
            f"in {delay:g} s ({slot.deaths} deaths in a row, each within " \
            f"{HEALTHY_SECONDS:g} s of starting)"
        log.warning("worker %d (pid %d) %s after %.1f s; replacing it %s",
                    slot.index, pid, _how(code), lived, when)

    def _next_due(self) -> float | None:
        return min((s.due for s in self.slots if s.due is not None), default=None)

    def _start_due(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.due is None or slot.due > now:
                continue
            replacing = slot.started > 0
            try:
                pid = self.start(slot.index)
            except OSError as exc:  # fork refused (memory, process limit): try again later
                slot.deaths += 1
                slot.due = now + max(FIRST_DELAY, restart_delay(slot.deaths))
                log.error("cannot start worker %d: %s", slot.index, exc)
                continue
            slot.started, slot.due = time.monotonic(), None
            self.children[pid] = slot
            if replacing:
                log.info("worker %d is now pid %d", slot.index, pid)
