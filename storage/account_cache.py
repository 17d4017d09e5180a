"""Reads about one account (a member's role, how many hold the owning role), kept until the
account changes.

`/v1/check` with an `account_id` asks storage the same questions again and
again; answering from memory saves a database round trip per check. An entry
is tagged with its account's *stamp*, read before the database is queried;
every transaction that locks an account (every change to its members, its
invitations or the account itself) writes a fresh random stamp after it
commits. An entry whose tag no longer equals its account's stamp is stale and
is read again. Stamps live in a small file mapped into memory by every
process on this host, so a change made by one worker is seen by the others at
their next read; a change made on another host, or by hand in the database,
is not, which is why the cache is off by default with PostgreSQL.

Why the order makes this safe: a reader takes the stamp before its query and a
writer replaces the stamp after its commit, so a reader whose query missed a
commit necessarily took the stamp before that commit's new stamp existed.

With PostgreSQL, changes made through other hosts arrive as notifications: every write
that locks an account sends NOTIFY with its id inside the transaction (delivered at commit),
and each worker's listener renews that account's stamp. The window in which another host can
still answer from its cache is the notification's delivery time (README, "Account cache").
A cache whose listener is not connected is not trusted: it answers every read from the
database until the listener has reconnected and the cache is flushed, since notifications
sent while disconnected are lost.
"""

from __future__ import annotations

import mmap
import os
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

SLOTS = 8192
STAMP_BYTES = 8
STAMPS_FILE = "account-stamps"  # in the data dir, shared by the processes serving it


class Stamps:
    """One 8-byte stamp per slot; accounts share a slot by a stable hash of their id."""

    def __init__(self, path: Path | None = None) -> None:
        size = SLOTS * STAMP_BYTES
        if path is None:
            self._map: mmap.mmap | bytearray = bytearray(size)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size != size:
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)

    @staticmethod
    def _offset(account_id: str) -> int:
        return (zlib.crc32(account_id.encode()) % SLOTS) * STAMP_BYTES

    def current(self, account_id: str) -> bytes:
        at = self._offset(account_id)
        return bytes(self._map[at:at + STAMP_BYTES])

    def renew(self, account_id: str) -> None:
        at = self._offset(account_id)
        self._map[at:at + STAMP_BYTES] = os.urandom(STAMP_BYTES)


class AccountCache:
    """At most `size` answers, least recently used dropped first."""

    def __init__(self, stamps: Stamps, size: int = 10_000, trusted: bool = True) -> None:
        self.stamps, self.size = stamps, size
        self._entries: OrderedDict[tuple, tuple[bytes, object]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        self.trusted = trusted  # False while changes from other hosts may go unseen
        self._epoch = 0  # a read that began before the last resync never stores its answer

    def lookup(self, account_id: str, key: Hashable, load: Callable[[], T]) -> T:
        """`load()`'s answer for (account, key): from memory while the account is unchanged."""
        if not self.trusted:
            return load()
        epoch = self._epoch
        stamp = self.stamps.current(account_id)
        entry_key = (account_id, key)
        with self._lock:
            entry = self._entries.get(entry_key)
            if entry is not None and entry[0] == stamp:
                self._entries.move_to_end(entry_key)
                self.hits += 1
                return entry[1]  # type: ignore[return-value]
            self.misses += 1
        value = load()
        with self._lock:
            if epoch != self._epoch or not self.trusted:
                return value
            self._entries[entry_key] = (stamp, value)
            self._entries.move_to_end(entry_key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    def changed(self, account_ids: Iterable[str]) -> None:
        """Called after a transaction that locked these accounts has ended, here or (through
        a notification) on another host."""
        for account_id in set(account_ids):
            self.stamps.renew(account_id)

    def distrust(self) -> None:
        """The listener lost its connection: stop answering from memory."""
        with self._lock:
            self.trusted = False
            self._epoch += 1

    def resync(self) -> None:
        """The listener is listening again: forget everything, then answer from memory again.
        A read that began before this point stores nothing (its epoch is older)."""
        with self._lock:
            self._entries.clear()
            self._epoch += 1
            self.trusted = True
