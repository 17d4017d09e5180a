"""A server's processes and their sockets as Linux's /proc shows them, and fresh-connection
requests with a client timeout: what a test needs to see that a worker's socket is its own
and that no connection hangs.
"""

from __future__ import annotations

import http.client
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

PROC = Path("/proc")
LISTEN = "0A"  # TCP state in /proc/net/tcp


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid), or None when the process is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    state, ppid = text[text.rindex(")") + 2:].split()[:2]
    return state, int(ppid)


def alive(pid: int) -> bool:
    """Running, not a zombie (a zombie's sockets are already closed)."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def children(pid: int) -> set[int]:
    """The live child processes of `pid`."""
    found = set()
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat and stat[1] == pid and stat[0] != "Z":
                found.add(int(entry.name))
    return found


def listening_sockets(port: int) -> set[int]:
    """Inodes of the TCP sockets listening on `port`, each SO_REUSEPORT member on its own."""
    found = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in lines:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == LISTEN:
                found.add(int(fields[9]))
    return found


def socket_inodes(pid: int) -> set[int]:
    """Inodes of every socket the process holds open."""
    found = set()
    folder = PROC / str(pid) / "fd"
    try:
        names = os.listdir(folder)
    except OSError:
        return found
    for name in names:
        try:
            target = os.readlink(folder / name)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found


def listeners_by_process(supervisor: int, port: int) -> dict[int, set[int]]:
    """For the supervisor and each of its workers, the listening sockets on `port` it holds."""
    listening = listening_sockets(port)
    return {pid: socket_inodes(pid) & listening for pid in {supervisor, *children(supervisor)}}


def port_of(url: str) -> int:
    return urlsplit(url).port


def fresh_get(url: str, path: str, timeout: float, headers: dict | None = None,
              method: str = "GET") -> tuple[int, bytes]:
    """One request on a new connection; raises on a refused, reset or silent one (timeout)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, path, headers={"Connection": "close", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_for(condition, timeout: float, what: str, every: float = 0.02):
    """Poll `condition()` until it returns something true; its value, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(every)

