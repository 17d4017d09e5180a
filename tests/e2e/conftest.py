"""Fixtures the end-to-end tests share."""

import pytest

from tests.support.browser import browser  # noqa: F401 (a fixture, found by name)

# `rolebook serve --server`: the serving guarantees (start-up line and refusals, SIGTERM drain,
# SIGHUP reload in every worker, replaced workers, one /metrics) hold for both.
SERVERS = ("waitress", "granian")


@pytest.fixture(params=SERVERS)
def http_server(request) -> str:
    return request.param
