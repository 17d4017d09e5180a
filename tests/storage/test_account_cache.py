"""The account cache answers repeated reads from memory and never serves a stale answer.

Contract: two Stores with their own caches over one database and one stamps
file (as two worker processes of one server are) each see every change the
other makes at their next read: joining, a role change, removal, deletion of
the account. A change that commits while a read is in flight cannot leave
that read's answer cached. Repeated reads are hits (no query), the cache
holds at most its size, and with no cache a Store reads the database each
time.
"""

from __future__ import annotations

import pytest

from rolebook.storage import NotFound, Store
from rolebook.storage.account_cache import STAMPS_FILE, AccountCache, Stamps
from tests.support.storage_policy import OWNER, decide


@pytest.fixture
def stamps_path(tmp_path):
    return tmp_path / "var" / STAMPS_FILE


@pytest.fixture
def store(database_url, clock, stamps_path):
    """The worker under test: a Store whose cache maps the shared stamps file."""
    s = Store(database_url, clock=clock, cache=AccountCache(Stamps(stamps_path)))
    yield s
    s.close()


@pytest.fixture
def other(database_url, clock, stamps_path):
    """Another worker on the same database and stamps file, with a cache of its own."""
    s = Store(database_url, clock=clock, cache=AccountCache(Stamps(stamps_path)))
    yield s
    s.close()


def test_repeated_reads_are_hits(store, new_account):
    account = new_account("alice")
    cache = store.accounts.cache
    first = store.accounts.access(account["id"], "alice")
    hits, misses = cache.hits, cache.misses
    for _ in range(5):
        assert store.accounts.access(account["id"], "alice") == first
    assert (cache.hits - hits, cache.misses - misses) == (5, 0)
    assert first[1] == OWNER


def test_answers_are_copies_a_caller_cannot_corrupt(store, new_account):
    account = new_account("alice")
    got, _ = store.accounts.access(account["id"], "alice")
    got["policy"] = "tampered"
    assert store.accounts.access(account["id"], "alice")[0]["policy"] == account["policy"]
    facts = store.accounts.facts(account["id"], OWNER)
    facts["owner_count"] = 99
    assert store.accounts.facts(account["id"], OWNER) == {"owner_count": 1}


def test_another_workers_changes_are_seen_at_the_next_read(store, other, new_account, join):
    account = new_account("alice")
    acc = account["id"]
    assert store.accounts.access(acc, "bob")[1] is None          # cached: not a member
    assert store.accounts.facts(acc, OWNER) == {"owner_count": 1}

    # `join` writes through the fixture store; make the other worker do the role change.
    join(acc, "bob", "read")
    assert store.accounts.access(acc, "bob")[1] == "read"
    assert store.members.member_facts(acc, "alice", "bob", OWNER)["target_role"] == "read"

    other.members.change_role(acc, "alice", "bob", new_role=OWNER, owner_role=OWNER, decide=decide)
    assert store.accounts.access(acc, "bob")[1] == OWNER
    assert store.accounts.facts(acc, OWNER) == {"owner_count": 2}
    assert store.members.member_facts(acc, "alice", "bob", OWNER)["target_role"] == OWNER

    other.members.remove(acc, "alice", "bob", owner_role=OWNER, decide=decide)
    assert store.accounts.access(acc, "bob")[1] is None
    assert store.accounts.facts(acc, OWNER) == {"owner_count": 1}

    other.accounts.delete(acc, "alice", owner_role=OWNER, decide=decide)
    with pytest.raises(NotFound):
        store.accounts.access(acc, "alice")


def test_a_change_during_a_read_does_not_stay_cached(tmp_path):
    cache = AccountCache(Stamps(tmp_path / STAMPS_FILE))

    def read_then_someone_commits():
        cache.changed(["acc_1"])  # a writer commits (and renews the stamp) mid-read
        return "before the change"

    assert cache.lookup("acc_1", "k", read_then_someone_commits) == "before the change"
    assert cache.lookup("acc_1", "k", lambda: "after the change") == "after the change"
    assert cache.lookup("acc_1", "k", lambda: "not asked") == "after the change"


def test_stamps_are_shared_through_the_file_and_per_account(tmp_path):
    one, two = Stamps(tmp_path / STAMPS_FILE), Stamps(tmp_path / STAMPS_FILE)
    cache = AccountCache(one)
    cache.lookup("acc_a", "k", lambda: "a")
    cache.lookup("acc_b", "k", lambda: "b")
    AccountCache(two).changed(["acc_a"])
    assert one.current("acc_a") == two.current("acc_a")
    assert cache.lookup("acc_a", "k", lambda: "a again") == "a again"
    assert cache.lookup("acc_b", "k", lambda: "not asked") == "b"
    assert (tmp_path / STAMPS_FILE).stat().st_mode & 0o777 == 0o600


def test_holds_at_most_its_size_dropping_the_least_recently_used(tmp_path):
    cache = AccountCache(Stamps(None), size=2)
    cache.lookup("acc", 1, lambda: "one")
    cache.lookup("acc", 2, lambda: "two")
    cache.lookup("acc", 1, lambda: "not asked")       # 1 is now the most recent
    cache.lookup("acc", 3, lambda: "three")           # drops 2
    assert cache.lookup("acc", 1, lambda: "reloaded") == "one"
    assert cache.lookup("acc", 2, lambda: "reloaded") == "reloaded"
    assert len(cache._entries) == 2


def test_without_a_cache_every_read_goes_to_the_database(database_url, clock, new_account, join):
    plain = Store(database_url, clock=clock)
    try:
        account = new_account("alice")
        assert plain.accounts.cache is None
        assert plain.accounts.access(account["id"], "bob")[1] is None
        join(account["id"], "bob", "edit")  # through a Store whose cache `plain` knows nothing of
        assert plain.accounts.access(account["id"], "bob")[1] == "edit"
    finally:
        plain.close()
