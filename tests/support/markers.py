"""Markers shared by test modules."""

import pytest

# Run a test on the SQLite backend only: for behaviour that does not touch storage semantics.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
