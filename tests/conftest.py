"""Shared fixtures: the database on SQLite and PostgreSQL, the app in process, users with tokens.

`backend` runs a test once on a SQLite file and once on a throw-away
PostgreSQL database (skipped, with the reason, where no server answers);
`database_url` is that database, empty at the start of each test.
"""

from __future__ import annotations

from pathlib import Path

import falcon.testing
import pytest

from rolebook.api.app import build_services, create_app
from rolebook.api.config import Config
from tests.support import postgres
from tests.support.client import User, in_process
from tests.support.clock import Clock
from tests.support.markers import BACKENDS
from tests.support.policies import REPO


@pytest.fixture(scope="session")
def pg_database():
    """One throw-away PostgreSQL database for the session (a random name: one per xdist worker)."""
    with postgres.throwaway_database() as name:
        yield name


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def database_url(backend, request, tmp_path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/db/rolebook.db"
    name = request.getfixturevalue("pg_database")
    postgres.reset_schema(name)
    return postgres.url(name)


@pytest.fixture
def clock() -> Clock:
    """Storage's clock for tests that move time (see fast_mail.py): real time until moved."""
    return Clock()


@pytest.fixture
def config(tmp_path, database_url) -> Config:
    return Config(data_dir=str(tmp_path / "var"), database_url=database_url,
                  policy_dir=str(REPO / "policies"), jwt_secret="test-secret-" + "x" * 32,
                  public_url="http://rolebook.test")


@pytest.fixture
def services(config):
    services = build_services(config)
    yield services
    services.mailer.stop()
    services.decisions.close()
    services.store.close()


@pytest.fixture
def maildir(config) -> Path:
    """Where the app's default transport delivers invitation mail."""
    return config.data_path / "mail"


@pytest.fixture
def client(config, services) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(config, services))


@pytest.fixture
def user(client, config):
    """user("alice", scope="check") → a User calling the in-process app with its own token."""
    transport = in_process(client)

    def make(sub: str, email: str | None = None, scope: str = "") -> User:
        return User(transport, config, sub, email, scope)
    return make
