"""Shared fixtures: the shipped policy directory's snapshot and a writable copy of it."""

from __future__ import annotations

import shutil

import pytest

from rolebook.engine import load_snapshot
from tests.support.policies import POLICY_DIR


@pytest.fixture(scope="session")
def snapshot():
    return load_snapshot(POLICY_DIR)


@pytest.fixture
def policy_copy(tmp_path):
    """A writable copy of the shipped policies (with their suites) under tmp_path."""
    target = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, target)
    return target
