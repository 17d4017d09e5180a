"""Users, as the token names them.

API:
    ensure(user_id, email) -> dict {"id", "email", "first_name", "last_name"}
        Upsert: the email follows the latest token; names are kept.
    get(user_id) -> dict (same shape) | raises NotFound
"""

from __future__ import annotations

from typing import Any

from rolebook.storage.base import Repository
from rolebook.storage.errors import Conflict, NotFound


def user_dict(user: Any) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
    }


def upsert(db: Any, user_id: str, email: str) -> Any:
    """Inside the caller's transaction: the user row, created or with its email refreshed."""
    user = db.User.get(id=user_id)
    if user is None:
        return db.User(id=user_id, email=email, email_lower=email.lower())
    if user.email != email:
        user.email = email
        user.email_lower = email.lower()
    return user


class Users(Repository):
    def ensure(self, user_id: str, email: str) -> dict[str, Any]:
        """Create or refresh a user; two first requests at once are both fine."""
        try:
            return self._write(lambda: user_dict(upsert(self.db, user_id, email)))
        except Conflict:
            # Lost the insert race to a twin request: the row exists now; refresh it.
            return self._write(lambda: user_dict(upsert(self.db, user_id, email)))

    def get(self, user_id: str) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            user = self.db.User.get(id=user_id)
            if user is None:
                raise NotFound("user not found")
            return user_dict(user)

        return self._read(run)
