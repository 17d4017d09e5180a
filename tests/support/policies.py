"""Where the repository and its shipped policies are, and small helpers to edit a policy's text.

Test modules import these from here rather than from a conftest, which pytest loads as a
plugin and which is not meant to be imported.
"""

from __future__ import annotations

from pathlib import Path

from rolebook.engine import build

REPO = Path(__file__).resolve().parents[2]
POLICY_DIR = REPO / "policies"
CONVERT = (POLICY_DIR / "convert" / "v1.yaml").read_text()


def edited(text: str, old: str, new: str, count: int = 1) -> str:
    assert text.count(old) >= count, f"fixture text not found: {old!r}"
    return text.replace(old, new, count)


def problems_of(text: str, file: str = "policies/convert/v1.yaml"):
    return build(file, text).problems
