"""Shared fixtures: the shipped policy directory, its snapshot, and broken variants of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rolebook.engine import build, load_snapshot

ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = ROOT / "policies"
CONVERT = (POLICY_DIR / "convert" / "v1.yaml").read_text()
ANYTRACK = (POLICY_DIR / "anytrack" / "v1.yaml").read_text()


@pytest.fixture(scope="session")
def snapshot():
    return load_snapshot(POLICY_DIR)


@pytest.fixture
def policy_copy(tmp_path):
    """A writable copy of the shipped policies (with their suites) under tmp_path."""
    target = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, target)
    return target


def edited(text: str, old: str, new: str, count: int = 1) -> str:
    assert text.count(old) >= count, f"fixture text not found: {old!r}"
    return text.replace(old, new, count)


def problems_of(text: str, file: str = "policies/convert/v1.yaml"):
    return build(file, text).problems
