"""A real `rolebook serve --workers 2` on SQLite or a throw-away PostgreSQL, for e2e tests.

`served(tmp_path, backend)` yields (server, store, make_user): the live server,
a Store of this test process on the same database and the server's account
stamps (to arrange what the API cannot, e.g. members joining without the
invitation email round trip, and have every worker see it), and
`make_user(sub)` → a User calling the server over HTTP with a valid token.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rolebook.storage import Store
from rolebook.storage.account_cache import STAMPS_FILE, AccountCache, Stamps
from tests.support import live, postgres
from tests.support.client import users_of

SECRET = "e2e-members-" + "m" * 32


@contextmanager
def served(tmp_path: Path, backend: str, workers: int = 2, *flags: str) -> Iterator[tuple]:
    with postgres.throwaway_for(backend, "rolebook_e2e") as name:
        url = postgres.url(name) if name else f"sqlite:///{tmp_path}/db/rolebook.db"
        server = live.start(tmp_path / "srv", "--workers", str(workers), "--database-url", url,
                            "--jwt-secret", SECRET, "--decision-log", "off", *flags)
        # Writes of this test process must renew the server's account stamps, as a worker's do.
        store = Store(url, cache=AccountCache(Stamps(server.data_dir / STAMPS_FILE)))
        try:
            yield server, store, users_of(server.url, SECRET)
        finally:
            store.close()
            code = server.stop()
            assert "Traceback" not in server.output(), server.output()[-4000:]
            assert code == 0, server.output()[-4000:]
