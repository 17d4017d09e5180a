"""This process's pid, kept in a variable that a fork renews.

Code that must notice it now runs in a forked worker (the log and decision-log writer threads,
prometheus_client's multiprocess values) asked `os.getpid()` on every request: ten system calls
a `/v1/check`, 6% of a granian worker's GIL-held time (py-spy). `os.register_at_fork` renews
the value in every child, so a read is as current as the system call.
"""

from __future__ import annotations

import os

_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def pid() -> int:
    return _pid
