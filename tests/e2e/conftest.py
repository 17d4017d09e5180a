"""Fixtures the end-to-end tests share."""

from tests.support.browser import browser  # noqa: F401 (a fixture, found by name)
