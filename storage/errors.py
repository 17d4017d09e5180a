"""Errors the repositories raise; the HTTP layer maps each to one status code.

InvalidCursor -> 400, NotFound -> 404, Denied -> 403, Conflict -> 409, Gone -> 410,
RateLimited -> 429, IntegrityFault -> 503. Storage never lets a Pony integrity or
optimistic-check error escape: a lost race (a unique key taken first, an optimistic
check) is a Conflict, which is what the client would have seen a moment later; any
other integrity error (a NOT NULL, CHECK or foreign key the code did not expect) is an
IntegrityFault, because retrying cannot help.
"""

from __future__ import annotations

from typing import Any


class StorageError(Exception):
    """Base class so callers can catch every storage outcome at once."""


class InvalidCursor(StorageError, ValueError):
    """A list cursor this list did not hand out (made up, cut, or of another list)."""


class NotFound(StorageError):
    """The account, member or invitation does not exist (or is not visible to the actor)."""

    def __init__(self, detail: str = "not found") -> None:
        super().__init__(detail)
        self.detail = detail


class Conflict(StorageError):
    """A broken invariant or a lost race: a minimum of role holders, email taken, duplicate."""

    def __init__(self, detail: str, rule: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.rule = rule  # the policy rule, when the invariant is the policy's


class IntegrityFault(StorageError):
    """The database refused a change for a reason no concurrent change explains.

    `detail` is for the client; `cause` (the database's own message, naming tables and
    columns) is for the log.
    """

    def __init__(self, constraint: str, cause: str) -> None:
        self.detail = (f"the database refused the change ({constraint}); this is not a "
                       "concurrent change, so retrying will not help: the database does not "
                       "match what this service expects, and the error is logged")
        self.cause = cause
        super().__init__(self.detail)


class Gone(StorageError):
    """The invitation was used, revoked or has expired."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Denied(StorageError):
    """The caller's decision callback said no; carries that decision for the 403 body.

    `rule` and `reason` are copied from the decision so handlers need not know its type.
    """

    def __init__(self, decision: Any = None, *, rule: str | None = None,
                 reason: str | None = None) -> None:
        self.decision = decision
        self.rule = rule if rule is not None else getattr(decision, "rule", None)
        self.reason = reason if reason is not None else getattr(decision, "reason", "denied")
        super().__init__(self.reason)


class WrongUser(Denied):
    """The signed-in user's email is not the invited one; the invitation stays usable."""

    def __init__(self, reason: str = "this invitation was sent to a different email address"):
        super().__init__(None, rule="invitation-email-mismatch", reason=reason)


class RateLimited(StorageError):
    """Too many invitations sent from one account in the last hour."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"rate limited; retry after {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds
