"""Fixtures for storage tests: a Store on a fresh database per test, with a standing clock.

The database is tests/conftest.py's `database_url`: a SQLite file, and a throw-away
PostgreSQL database emptied before each test (skipped, saying so, where no server answers).
The `decide` fixture is a tiny hand-written policy (tests/support/storage_policy.py):
storage must work with any.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rolebook.storage import InvitationRules, Store
from tests.support.clock import START, Clock
from tests.support.race import outcomes
from tests.support.storage_policy import OWNER, Decision, decide, make_message


@pytest.fixture
def clock() -> Clock:
    """Standing still: storage tests do exact arithmetic on the times they store."""
    return Clock(START)


@pytest.fixture
def store(database_url: str, clock: Clock) -> Iterator[Store]:
    s = Store(database_url, clock=clock)
    yield s
    s.close()


@pytest.fixture
def new_account(store: Store) -> Callable[..., dict[str, Any]]:
    """Create an account owned by `owner` (user id and email derived from it)."""

    def make(owner: str = "alice", policy: str = "testpol", single: bool = False,
             name: str = "Acme") -> dict[str, Any]:
        return store.accounts.create(owner, f"{owner}@example.com", name=name, policy=policy,
                                     owner_role=OWNER, single_email_scope=single)

    return make


@pytest.fixture(name="decide")
def decide_fixture() -> Callable[..., Decision]:
    return decide


@pytest.fixture(name="make_message")
def make_message_fixture() -> Callable[..., tuple[str, str, str, str]]:
    return make_message


@pytest.fixture
def race() -> Callable[..., list[tuple[str, Any]]]:
    return outcomes


@pytest.fixture
def invite(store: Store) -> Callable[..., tuple[dict[str, Any], str]]:
    """Invite with test defaults: 1 hour lifetime, no rate limit, many accounts per email."""

    def make(account_id: str, email: str, role: str = "read", actor: str = "alice",
             single: bool = False, ttl: int = 3600,
             limit: int | None = None) -> tuple[dict[str, Any], str]:
        rules = InvitationRules(ttl, single_email_scope=single, per_account_per_hour=limit)
        return store.invitations.create(account_id, actor, email=email, role=role, rules=rules,
                                        decide=decide, make_message=make_message)

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
