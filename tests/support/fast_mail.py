"""In-process tests of invitation mail: a quick outbox sender, and storage on a movable clock.

A module sets `FAST_MAIL` in its `config` fixture and imports `services_on_clock`, which
pytest then finds as that module's `services` fixture.
"""

from __future__ import annotations

import pytest

from rolebook.api.app import build_services
from rolebook.storage import Store

# The outbox sender polls and retries often, so a test waits for mail a fraction of a second.
FAST_MAIL = {"mail_poll_seconds": 0.2, "mail_retry_base_seconds": 0.05}


@pytest.fixture(name="services")
def services_on_clock(config, clock):
    """The app's services with storage on the test's `clock`, so a test can move time."""
    services = build_services(config, Store(config.effective_database_url, clock=clock))
    yield services
    services.mailer.stop()
    services.decisions.close()
    services.store.close()
