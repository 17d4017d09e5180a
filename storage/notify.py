"""PostgreSQL notifications for every worker process: one LISTEN connection per feed, in a daemon
thread (psycopg2, which Pony already uses: Pony has no notification API).

Writers send `pg_notify` inside their transaction, so PostgreSQL delivers at commit and never
for a rollback. Notifications sent while a listener is disconnected are lost, so a feed calls
`resync` after every (re)connection and `lost` when its connection fails; a heartbeat query
every HEARTBEAT_SECONDS notices a dead connection even when nothing is being sent.
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable
from typing import Any

from rolebook.storage import postgres
from rolebook.storage.postgres import Limits

log = logging.getLogger("rolebook.storage.notify")
RECONNECT_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)
HEARTBEAT_SECONDS = 2.0


def notify(db: Any, channel: str, payload: str) -> None:
    """Inside the caller's transaction; a no-op on SQLite, which has no notifications."""
    if db.provider.dialect == "PostgreSQL":  # provider_name is unset for a provider class
        db.execute("SELECT pg_notify($channel, $payload)", globals={},
                   locals={"channel": channel, "payload": payload})


def listen_connector(url: str, name: str,
                     limits: Limits | None = None) -> Callable[[], Any] | None:
    """A psycopg2 connect function for PostgreSQL URLs (None for SQLite); its waits are bounded
    by `limits` (the defaults unless given), so a heartbeat a hung or unreachable server never
    answers fails within seconds, not 15 minutes."""
    from rolebook.storage.store import bind_arguments

    args = bind_arguments(url)
    if args.pop("provider") == "sqlite":
        return None

    def connect() -> Any:
        return postgres.connect(args, limits or Limits(), application_name=f"rolebook {name}")
    return connect


class Listener:
    """Calls `handle(payloads)` for the notifications on `channel`, from one daemon thread."""

    def __init__(self, connect: Callable[[], Any], channel: str, what: str,
                 handle: Callable[[list[str]], None], resync: Callable[[], None],
                 lost: Callable[[], None] = lambda: None) -> None:
        self.connect, self.channel, self.what = connect, channel, what
        self.handle, self.resync, self.lost = handle, resync, lost
        self.stopped = threading.Event()
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"listen-{channel}", daemon=True)

    def start(self) -> Listener:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=5)

    def _run(self) -> None:
        failures = 0
        while not self.stopped.is_set():
            try:
                self._listen()
                failures = 0
            except Exception as exc:  # any driver failure: reconnect, never die
                self.connected.clear()
                self._call(self.lost)
                delay = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                failures += 1
                log.warning("%s notifications lost (%s); reconnecting in %.1f s",
                            self.what, str(exc).strip(), delay)
                self.stopped.wait(delay)

    def _listen(self) -> None:
        conn = self.connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f"LISTEN {self.channel}")
                self._call(self.resync)
                self.connected.set()
                while not self.stopped.is_set():
                    if select.select([conn], [], [], HEARTBEAT_SECONDS) == ([], [], []):
                        cur.execute("SELECT 1")  # raises on a dead connection
                    conn.poll()
                    payloads = [n.payload for n in conn.notifies]
                    conn.notifies.clear()
                    if payloads:
                        self._call(lambda batch=payloads: self.handle(batch))
        finally:
            self.connected.clear()
            conn.close()

    def _call(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:
            log.exception("handling notifications on %s failed", self.channel)
