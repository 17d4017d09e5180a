"""An integrity error means "lost a race, retry" only when a unique key was taken first.

Protects: a table that does not match (a column this code does not fill) makes a write
an IntegrityFault, not a Conflict: its detail says retrying will not help, the log
names the table and column, and nothing is stored. Unique keys taken first stay
Conflicts (tests/storage/test_storage_races.py forces that interleaving).
"""

from __future__ import annotations

import logging

import pytest

from rolebook.storage import Conflict
from rolebook.storage.errors import IntegrityFault
from tests.support.schema import add_unfilled_column


def test_a_column_the_code_does_not_fill_is_a_fault_not_a_race(store, database_url, caplog):
    add_unfilled_column(database_url)
    for _ in range(2):  # the same answer however often the client retries
        with caplog.at_level(logging.ERROR, logger="rolebook.storage"), \
                pytest.raises(IntegrityFault) as fault:
            store.accounts.create("alice", "alice@example.com", name="Acme", policy="testpol",
                                  owner_role="owner")
        assert not isinstance(fault.value, Conflict)
        assert "retrying will not help" in fault.value.detail
        assert "region" in fault.value.cause and "region" not in fault.value.detail
    assert "integrity error that is not a race" in caplog.text and "region" in caplog.text
    assert store.accounts.list_for_user("alice", 10)[0] == []
