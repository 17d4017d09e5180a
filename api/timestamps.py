"""UTC timestamps for log lines, formatted as `datetime.isoformat` would, at a third of its cost.

Every request writes two (its access line and its decision line): `datetime.fromtimestamp(t,
UTC).isoformat()` took 3 µs of them, most of it building the datetime. Here the date and time to
the second are formatted once a second and the fraction is appended.
"""

from __future__ import annotations

import time

_second: tuple[int, str] = (-1, "")  # the last second formatted; swapped whole, so thread-safe


def utc_stamp(moment: float, digits: int) -> str:
    """`moment` (seconds since the epoch) as 2026-12-04T10:00:00.123Z with `digits` (3 or 6) of
    the fraction: rounded to the microsecond, then cut, as datetime does."""
    global _second
    second = int(moment // 1)
    micros = round((moment - second) * 1_000_000)
    if micros == 1_000_000:
        second, micros = second + 1, 0
    known = _second
    if known[0] != second:
        known = _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{known[1]}.{micros // 10 ** (6 - digits):0{digits}d}Z"
