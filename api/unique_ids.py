"""Decision and request ids: unique across processes (a random prefix per process) without a
syscall each (secrets.token_hex per request was 2% of a worker at one check per request)."""

from __future__ import annotations

import itertools
import os
import secrets

_ID_PREFIX = secrets.token_hex(6)
_ID_COUNTER = itertools.count(1)


def _new_id_prefix() -> None:
    """A forked worker must not share its parent's prefix, or two workers would hand out the
    same ids."""
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX, _ID_COUNTER = secrets.token_hex(6), itertools.count(1)


os.register_at_fork(after_in_child=_new_id_prefix)


def new_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):010x}"
