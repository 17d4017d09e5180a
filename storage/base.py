"""Shared plumbing for repositories: one transaction helper, clock, cursors, decisions.

Every mutating repository method runs through `Repository._write`, so the rule
"a unique-constraint or optimistic-check race becomes Conflict, any other integrity
error IntegrityFault" lives in one place.
Callers must not hold a `db_session` of their own around these calls: nested Pony
sessions are no-ops, and the commit (and its errors) would then happen outside.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from pony.orm import (
    CommitException,
    Database,
    IsolationError,
    TransactionIntegrityError,
    db_session,
)
from pony.orm.dbapiprovider import IntegrityError

from rolebook.storage.account_cache import AccountCache
from rolebook.storage.errors import Conflict, Denied, IntegrityFault, InvalidCursor, NotFound
from rolebook.storage.notify import notify

T = TypeVar("T")
Clock = Callable[[], datetime]
_INTEGRITY_ERRORS = (TransactionIntegrityError, IntegrityError)
# A concurrent transaction can only have taken a key first: PostgreSQL's unique_violation,
# SQLite's UNIQUE and PRIMARY KEY. NOT NULL, CHECK and foreign keys fail the same way
# however often the client retries.
_UNIQUE_SQLSTATES = {"23505"}
_UNIQUE_SQLITE_ERRORS = {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}
log = logging.getLogger("rolebook.storage")
MAX_LIMIT = 1000
MAX_CURSOR_LENGTH = 512


class Decision(Protocol):
    """What the caller's `decide` callback returns (the engine's Decision fits)."""

    allowed: bool
    rule: str
    reason: str
    conflict: bool
    policy: str
    version: int


Decide = Callable[[str, str, str, dict[str, Any]], Decision]


def utc_now() -> datetime:
    """Naive UTC: Pony stores naive datetimes, and every stored time is UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso(value: datetime | None) -> str | None:
    """ISO-8601 with a Z so clients never guess the zone."""
    if value is None:
        return None
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def encode_cursor(kind: str, value: Any) -> str:
    """Opaque cursor: clients pass it back, never build it."""
    raw = json.dumps([kind, value], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None, of_type: type | None = None) -> Any:
    """Return the cursor's value, None for no cursor; InvalidCursor for anything not ours.

    With `of_type`, a value of another type (a hand-made cursor) is not ours either, nor an
    integer no database column holds (`["audit", 10**30]` was an OverflowError on SQLite).
    """
    if cursor is None or cursor == "":
        return None
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("invalid cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError) as e:
        raise InvalidCursor("invalid cursor") from e
    if not (isinstance(data, list) and len(data) == 2 and data[0] == kind):
        raise InvalidCursor("invalid cursor")
    value = data[1]
    if of_type is not None and type(value) is not of_type:
        raise InvalidCursor("invalid cursor")
    if isinstance(value, int) and not -2**63 <= value < 2**63:
        raise InvalidCursor("invalid cursor")
    return value


def check_limit(limit: int) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return limit


def enforce(decision: Decision) -> Decision:
    """Turn a negative decision into the error the policy asked for."""
    if decision.allowed:
        return decision
    if getattr(decision, "conflict", False):
        raise Conflict(decision.reason, rule=getattr(decision, "rule", None))
    raise Denied(decision)


def _driver_error(exc: BaseException | None) -> BaseException | None:
    """The DB-API error under Pony's wrappers (each keeps it as `original_exc`)."""
    while exc is not None and not hasattr(exc, "pgcode") and not hasattr(exc, "sqlite_errorname"):
        exc = getattr(exc, "original_exc", None)
    return exc


def _constraint(driver: BaseException) -> str | None:
    """None for a unique key (a race); otherwise the kind of constraint that failed."""
    sqlstate = getattr(driver, "pgcode", None)
    if sqlstate is not None:
        return None if sqlstate in _UNIQUE_SQLSTATES else \
            f"{type(driver).__name__}, SQLSTATE {sqlstate}"
    name = getattr(driver, "sqlite_errorname", None)
    return None if name in _UNIQUE_SQLITE_ERRORS else name


def _storage_outcome(exc: BaseException) -> Exception | None:
    """Conflict for a lost race, IntegrityFault for any other integrity error, else None."""
    causes = [info[1] for info in exc.exceptions] if isinstance(exc, CommitException) else [exc]
    for cause in causes:
        if isinstance(cause, _INTEGRITY_ERRORS):
            driver = _driver_error(cause)
            # Without a driver error, Pony's own session cache found the duplicate key.
            constraint = None if driver is None else _constraint(driver)
            if constraint is not None:
                # The first line names table and column; PostgreSQL's DETAIL lines would add
                # the row's values (emails) to the log.
                message = str(driver).strip().splitlines()[0]
                log.error("integrity error that is not a race (%s): %s", constraint, message)
                return IntegrityFault(constraint, message)
    if any(isinstance(cause, (*_INTEGRITY_ERRORS, IsolationError)) for cause in causes):
        return Conflict("a concurrent change conflicted with this one; retry")
    return None


ACCOUNTS_CHANNEL = "rolebook_accounts"


class Repository:
    """Base: holds the Database, the clock and the account cache; runs read and write sessions."""

    def __init__(self, db: Database, clock: Clock, cache: AccountCache | None = None) -> None:
        self.db = db
        self.now = clock
        self.cache = cache

    def _read(self, fn: Callable[[], T]) -> T:
        with db_session:
            return fn()

    def _cached(self, account_id: str, key: Any, fn: Callable[[], T]) -> T:
        """`_read(fn)`, answered from the account cache while the account is unchanged."""
        if self.cache is None:
            return self._read(fn)
        return self.cache.lookup(account_id, key, lambda: self._read(fn))

    def _write(self, fn: Callable[[], T], locked_account: str | None = None) -> T:
        """One transaction; a lost race (unique key, optimistic check) becomes Conflict."""
        try:
            with db_session:
                return fn()
        except Exception as e:
            outcome = _storage_outcome(e)
            if outcome is not None:
                raise outcome from e
            raise
        finally:
            if self.cache is not None and locked_account is not None:
                # after the commit (or rollback): see account_cache
                self.cache.changed([locked_account])

    def _write_account(self, account_id: str, fn: Callable[[Any], T]) -> T:
        """One transaction that first locks the account and hands it to `fn`: every change
        to an account goes through here, so the account cache hears of exactly that one."""
        return self._write(lambda: fn(self._lock_account(account_id)), account_id)

    def _lock_account(self, account_id: str) -> Any:
        """First query of every account write: BEGIN IMMEDIATE on SQLite, FOR UPDATE on
        PostgreSQL. NotFound if there is no such account."""
        account = self.db.Account.get_for_update(id=account_id)
        if account is None:
            raise NotFound("account not found")
        # Other hosts' account caches hear of the change at commit (never for a rollback).
        notify(self.db, ACCOUNTS_CHANNEL, account_id)
        return account

    def _membership(self, account: Any, user_id: str) -> Any:
        return self.db.Membership.get(account=account, user=user_id)

    def _owner_count(self, account: Any, owner_role: str) -> int:
        db = self.db
        return db.Membership.select(
            lambda m: m.account == account and m.role == owner_role
        ).count()

    def _audit(self, account_id: str, actor: str, action: str, *, target: str | None = None,
               before: Any = None, after: Any = None, decision: Any = None,
               policy: str | None = None, policy_version: int | None = None) -> None:
        """Append one audit event inside the caller's transaction."""
        self.db.AuditEvent(
            account_id=account_id,
            at=self.now(),
            actor=actor,
            action=action,
            target=target,
            before=None if before is None else json.dumps(before, sort_keys=True),
            after=None if after is None else json.dumps(after, sort_keys=True),
            rule=_field(decision, "rule"),
            policy=_field(decision, "policy") or policy,
            policy_version=_field(decision, "version") if decision is not None else policy_version,
        )


def _field(decision: Any, name: str) -> Any:
    if decision is None:
        return None
    if isinstance(decision, dict):
        return decision.get(name)
    return getattr(decision, name, None)
