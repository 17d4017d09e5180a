"""The storage backends every database test runs on, and markers to narrow a test to one.

`BACKENDS` parametrizes the `backend` fixture (tests/conftest.py) and the e2e fixtures that
serve on a backend of their own: a test runs on a SQLite file and on a throw-away PostgreSQL
database, which skips, saying why, where no server answers.
"""

import pytest

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

# SQLite only: for behaviour that does not touch storage semantics.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
# PostgreSQL only: for what exists there alone (notifications, interleaved writers).
postgres_only = pytest.mark.parametrize("backend", BACKENDS[1:], indirect=True)
