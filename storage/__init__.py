"""Storage for rolebook: Pony entities and repositories that return plain data.

Knows nothing of roles or products: role names, which role owns an account, and every decision
arrive from the caller. See `storage.store.Store` for construction.
"""

from rolebook.storage.errors import (
    Conflict,
    Denied,
    Gone,
    InvalidCursor,
    NotFound,
    RateLimited,
    StorageError,
    WrongUser,
)
from rolebook.storage.invitations import InvitationRules
from rolebook.storage.store import Store

__all__ = [
    "Conflict",
    "Denied",
    "Gone",
    "InvalidCursor",
    "InvitationRules",
    "NotFound",
    "RateLimited",
    "StorageError",
    "Store",
    "WrongUser",
]
