"""Pony's PostgreSQL provider without a round trip at the end of every session.

Pony's pool sends `DISCARD ALL` whenever a db_session ends, which doubles the cost
of the one-query reads on the request path (role look-ups). Storage keeps no session
state on a connection (no SET, temporary tables or prepared statements), so rolling
back whatever is still open is all a returned connection needs; psycopg2 skips that
rollback when no transaction is open.
"""

from __future__ import annotations

from typing import Any

from pony.orm.dbproviders.postgres import PGPool, PGProvider


class LeanPool(PGPool):
    def release(self, con: Any) -> None:
        assert con is self.con
        try:
            con.rollback()
        except BaseException:
            self.drop(con)
            raise


class LeanPGProvider(PGProvider):
    def get_pool(self, *args: Any, **kwargs: Any) -> LeanPool:
        return LeanPool(self.dbapi_module, *args, **kwargs)
