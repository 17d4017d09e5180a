"""What the databases can store: ids of bounded length and text without NUL characters.

Checked before any query runs, so input no database could hold is simply not found (ids) or
a 400 (bodies), never a database error.
"""

from __future__ import annotations

MAX_ID_LENGTH = 256


def storable_id(text: str) -> bool:
    return len(text) <= MAX_ID_LENGTH and bool(text.strip()) and "\x00" not in text


def first_nul_field(value: object) -> str | None:
    """The first string (key or value) with a NUL, which PostgreSQL text cannot store.
    A loop rather than recursion: a body may nest a thousand levels before it is validated."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return path
        elif isinstance(node, dict):
            children = []
            for key, item in node.items():
                here = f"{path}.{key}" if path else str(key)
                children += [(here, key), (here, item)]  # the key, then what it holds
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([(f"{path}[{i}]", item) for i, item in enumerate(node)]))
    return None
