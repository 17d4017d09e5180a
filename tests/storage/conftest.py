"""Fixtures for storage tests: a fresh database per test, on SQLite and on PostgreSQL.

PostgreSQL tests use a throw-away database created once per session on
127.0.0.1:5432 (user postgres, trust auth) and dropped at the end; each test starts
from an empty schema. If the server is unreachable those tests are skipped, saying so.
The `decide` fixture is a tiny hand-written policy: storage must work with any.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from rolebook.storage import Store
from tests.support import postgres

RANK = {"read": 1, "edit": 2, "owner": 3}
OWNER = "owner"


class FakeClock:
    """Time that moves only when a test says so (no sleeping)."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, 0)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, **delta: float) -> None:
        with self._lock:
            self.now += timedelta(**delta)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str
    reason: str = ""
    conflict: bool = False
    policy: str = "testpol"
    version: int = 1


def allow(rule: str) -> Decision:
    return Decision(True, rule, "allowed")


def deny(rule: str, reason: str, conflict: bool = False) -> Decision:
    return Decision(False, rule, reason, conflict)


def decide(kind: str, action: str, role: str, attr: dict[str, Any]) -> Decision:
    """A Convert-like policy written as plain Python for tests."""
    rank = RANK[role]
    if kind == "account":
        return allow("owners-delete") if role == OWNER else deny("no-rule", "owners only")
    if kind == "invitation":
        if action in ("create", "resend"):
            ok = rank >= RANK["edit"] and RANK[attr["role"]] <= rank
            return allow("grant-up-to-own") if ok else deny("no-rule", "cannot grant that")
        ok = role == OWNER or (rank >= RANK["edit"] and attr["role"] != OWNER)
        return allow("revoke") if ok else deny("no-rule", "cannot revoke")
    target_is_owner = attr["target_role"] == OWNER
    if action == "update_role":
        new = attr["new_role"]
        if attr["is_self"] and RANK[new] > rank:
            return deny("nobody-raises-own-role", "nobody may raise their own role")
        if target_is_owner and new != OWNER and attr["owner_count"] <= 1:
            return deny("keep-an-owner", "the account must keep an owner", conflict=True)
        if attr["is_self"] or role == OWNER:
            return allow("self-or-owner")
        ok = rank >= RANK["edit"] and not target_is_owner and RANK[new] <= rank
        return allow("editors-manage") if ok else deny("no-rule", "not allowed")
    if target_is_owner and attr["owner_count"] <= 1:
        return deny("only-owner-stays", "the only owner cannot leave", conflict=True)
    if action == "leave" or role == OWNER:
        return allow("leave-or-owner")
    ok = rank >= RANK["edit"] and not target_is_owner
    return allow("editors-remove") if ok else deny("no-rule", "not allowed")


def make_message(invitation: dict[str, Any], token: str) -> tuple[str, str, str, str]:
    link = f"https://rolebook.test/invitations/accept?token={token}"
    return (invitation["email"], "You are invited", f"Accept: {link}",
            f'<a href="{link}">Accept</a>')


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    with postgres.throwaway_database() as name:
        yield name


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store_url(backend: str, tmp_path: Any, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/data/rolebook.db"
    name = request.getfixturevalue("pg_database")
    postgres.reset_schema(name)
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[Store]:
    s = Store(store_url, clock=clock)
    yield s
    s.close()


@pytest.fixture
def new_account(store: Store) -> Callable[..., dict[str, Any]]:
    """Create an account owned by `owner` (user id and email derived from it)."""

    def make(owner: str = "alice", policy: str = "testpol", single: bool = False,
             name: str = "Acme") -> dict[str, Any]:
        return store.accounts.create(owner, f"{owner}@example.com", name, policy, None, OWNER,
                                     None, single_email_scope=single)

    return make


def run_together(*calls: Callable[[], Any]) -> list[tuple[str, Any]]:
    """Start every call on its own thread at the same moment; ("ok", value) or ("err", exc)."""
    barrier = threading.Barrier(len(calls))
    results: list[tuple[str, Any]] = [("none", None)] * len(calls)

    def worker(i: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = ("ok", call())
        except Exception as e:  # the test inspects it
            results[i] = ("err", e)

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "a racing call hung"
    return results


@pytest.fixture(name="decide")
def decide_fixture() -> Callable[..., Decision]:
    return decide


@pytest.fixture(name="make_message")
def make_message_fixture() -> Callable[..., tuple[str, str, str, str]]:
    return make_message


@pytest.fixture(name="race")
def race_fixture() -> Callable[..., list[tuple[str, Any]]]:
    return run_together


@pytest.fixture
def invite(store: Store) -> Callable[..., tuple[dict[str, Any], str]]:
    """Invite with test defaults: 1 hour lifetime, no rate limit, many accounts per email."""

    def make(account_id: str, email: str, role: str = "read", actor: str = "alice",
             single: bool = False, ttl: int = 3600,
             limit: int | None = None) -> tuple[dict[str, Any], str]:
        return store.invitations.create(account_id, actor, email, role, None, None, ttl,
                                        single, OWNER, decide, make_message, limit)

    return make


@pytest.fixture
def join(store: Store, invite: Callable[..., Any]) -> Callable[..., dict[str, Any]]:
    """Make `user` (email user@example.com) a member with `role` through an invitation."""

    def make(account_id: str, user: str, role: str = "read", single: bool = False) -> Any:
        creator = store.accounts.get(account_id)["created_by"]
        _, token = invite(account_id, f"{user}@example.com", role, actor=creator,
                          single=single)
        return store.invitations.accept(token, user, f"{user}@example.com",
                                        single_email_scope=lambda account: single)

    return make
