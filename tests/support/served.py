"""Real `rolebook serve --workers 2` replicas on SQLite or a throw-away PostgreSQL, for e2e tests.

`served(tmp_path, backend)` yields (server, store, make_user): the live server,
a Store of this test process on the same database and the server's account
stamps (to arrange what the API cannot, e.g. members joining without the
invitation email round trip, and have every worker see it), and
`make_user(sub)` → a User calling the server over HTTP with a valid token.

`fleet(tmp_path, "postgres", replicas=3)` yields a Fleet: that many replicas
(separate processes, data folders and ports, as separate hosts would be) on one
throw-away PostgreSQL database, the Store, and a make_user per replica.
`together(*calls)` races calls against them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rolebook.storage import Store
from rolebook.storage.account_cache import STAMPS_FILE, AccountCache, Stamps
from tests.support import live, postgres
from tests.support.client import User, users_of

SECRET = "e2e-members-" + "m" * 32


@dataclass
class Fleet:
    servers: list[live.LiveServer]
    store: Store
    users: list[Callable[..., User]]  # users[i](sub) calls replica i
    database_url: str


@contextmanager
def fleet(tmp_path: Path, backend: str, replicas: int = 1, workers: int = 2,
          *flags: str) -> Iterator[Fleet]:
    """Replicas share one database; on SQLite there is one (several hosts need PostgreSQL)."""
    assert backend == "postgres" or replicas == 1, "several replicas need PostgreSQL"
    with postgres.throwaway_for(backend, "rolebook_e2e") as name:
        url = postgres.url(name) if name else f"sqlite:///{tmp_path}/db/rolebook.db"
        servers, store = [], None
        try:
            for i in range(replicas):
                servers.append(live.start(
                    tmp_path / ("srv" if i == 0 else f"srv{i}"), "--workers", str(workers),
                    "--database-url", url, "--jwt-secret", SECRET, "--decision-log", "off",
                    *flags))
            # Writes of this test process must renew the first server's account stamps, as a
            # worker's do; PostgreSQL's notifications reach every replica as well.
            store = Store(url, cache=AccountCache(Stamps(servers[0].data_dir / STAMPS_FILE)))
            yield Fleet(servers, store, [users_of(s.url, SECRET) for s in servers], url)
        finally:
            if store is not None:
                store.close()
            codes = [server.stop() for server in servers]
            for server, code in zip(servers, codes, strict=True):
                assert "Traceback" not in server.output(), server.output()[-4000:]
                assert code == 0, server.output()[-4000:]


@contextmanager
def served(tmp_path: Path, backend: str, workers: int = 2, *flags: str) -> Iterator[tuple]:
    with fleet(tmp_path, backend, 1, workers, *flags) as one:
        yield one.servers[0], one.store, one.users[0]

