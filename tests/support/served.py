"""A real `rolebook serve --workers 2` on SQLite or a throw-away PostgreSQL, for e2e tests.

`served(tmp_path, backend)` yields (server, store, make_user): the live server,
a Store of this test process on the same database (to arrange what the API
cannot, e.g. members joining without the invitation email round trip), and
`make_user(sub)` → a User calling the server over HTTP with a valid token.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from storage import Store
from tests.support import live, postgres
from tests.support.client import users_of

SECRET = "e2e-members-" + "m" * 32


@contextmanager
def served(tmp_path: Path, backend: str, workers: int = 2) -> Iterator[tuple]:
    database = postgres.throwaway_database("rolebook_e2e") if backend == "postgres" \
        else nullcontext(None)
    with database as name:
        url = postgres.url(name) if name else f"sqlite:///{tmp_path}/db/rolebook.db"
        server = live.start(tmp_path / "srv", "--workers", str(workers), "--database-url", url,
                            "--jwt-secret", SECRET, "--decision-log", "off")
        store = Store(url)
        try:
            yield server, store, users_of(server.url, SECRET)
        finally:
            store.close()
            code = server.stop()
            assert "Traceback" not in server.output(), server.output()[-4000:]
            assert code == 0, server.output()[-4000:]
