"""A storage clock tests can move, and the app's services built on it."""

from __future__ import annotations

from datetime import timedelta

from rolebook.api.app import build_services
from rolebook.storage import Store
from rolebook.storage.base import utc_now


class Clock:
    """Storage's clock, movable: real time plus an offset the test sets."""

    def __init__(self):
        self.offset = timedelta(0)

    def __call__(self):
        return utc_now() + self.offset


def services_on(config, clock: Clock):
    """The app's services with storage on `clock`; a generator for a pytest fixture."""
    services = build_services(config, Store(config.effective_database_url, clock=clock))
    yield services
    services.mailer.stop()
    services.decisions.close()
    services.store.close()
