"""What the databases can store: ids of bounded length and text without NUL characters.

Checked before any query runs, so input no database could hold is simply not found (ids) or
a 400 (bodies), never a database error.
"""

from __future__ import annotations

MAX_ID_LENGTH = 256


def storable_id(text: str) -> bool:
    return len(text) <= MAX_ID_LENGTH and bool(text.strip()) and "\x00" not in text


def first_nul_field(value: object, path: str = "") -> str | None:
    """The first string (key or value) with a NUL, which PostgreSQL text cannot store."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return here
            found = first_nul_field(item, here)
            if found is not None:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = first_nul_field(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None
