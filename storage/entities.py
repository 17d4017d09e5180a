"""Pony entity definitions, built per Database so several Stores can live in one process.

Audit events, outbox rows and email claims hold account and invitation ids as plain
strings, not references: the audit trail must outlive a deleted account, and the
mailer must not care whether the invitation still exists.
"""

from __future__ import annotations

from datetime import datetime

from pony.orm import (
    Database,
    LongStr,
    Optional,
    PrimaryKey,
    Required,
    Set,
    composite_index,
    composite_key,
)


def define_entities(db: Database) -> None:
    """Declare every entity on `db`; reach them afterwards as `db.User`, `db.Account`..."""
    define_policy_entities(db)

    class User(db.Entity):
        _table_ = "rb_user"
        id = PrimaryKey(str)
        email = Required(str)
        email_lower = Required(str, index=True)
        first_name = Optional(str, nullable=True)
        last_name = Optional(str, nullable=True)
        memberships = Set("Membership")

    class Account(db.Entity):
        _table_ = "rb_account"
        id = PrimaryKey(str)
        name = Required(str)
        policy = Required(str)
        policy_version = Optional(int, nullable=True)
        created_at = Required(datetime)
        created_by = Required(str)
        version = Required(int, default=1)
        memberships = Set("Membership")
        invitations = Set("Invitation")

    class Membership(db.Entity):
        _table_ = "rb_membership"
        account = Required(Account)
        user = Required(User, index=True)
        role = Required(str)
        joined_at = Required(datetime)
        PrimaryKey(account, user)
        # (account, role) counts owners; `user` last lets a role-filtered member page be
        # read in key order from the index, without scanning or sorting the account.
        composite_index(account, role, user)

    class Invitation(db.Entity):
        _table_ = "rb_invitation"
        id = PrimaryKey(str)
        account = Required(Account)
        email = Required(str)
        email_lower = Required(str)
        role = Required(str)
        first_name = Optional(str, nullable=True)
        last_name = Optional(str, nullable=True)
        token_hash = Required(str, unique=True)
        status = Required(str)
        expires_at = Required(datetime)
        invited_by = Required(str)
        created_at = Required(datetime)
        accepted_by = Optional(str, nullable=True)
        accepted_at = Optional(datetime)
        revoked_at = Optional(datetime)
        # Written by the mail sender beside account operations: informational, so they
        # take no part in Pony's optimistic checks (an accept must not fail because the
        # invitation's email was marked sent meanwhile).
        delivery_status = Required(str, optimistic=False)
        delivery_attempts = Required(int, default=0, optimistic=False)
        last_error = Optional(str, nullable=True, optimistic=False)
        composite_index(account, email_lower)
        composite_index(account, created_at)

    class EmailClaim(db.Entity):
        """Who holds an email within a single-email policy: a member (user_id), or an invitation."""

        _table_ = "rb_email_claim"
        id = PrimaryKey(int, auto=True)
        policy = Required(str)
        email_lower = Required(str)
        account_id = Required(str, index=True)
        invitation_id = Optional(str, nullable=True)
        user_id = Optional(str, nullable=True)
        composite_key(policy, email_lower)

    class AuditEvent(db.Entity):
        _table_ = "rb_audit_event"
        id = PrimaryKey(int, auto=True)
        account_id = Required(str)
        at = Required(datetime)
        actor = Required(str)
        action = Required(str)
        target = Optional(str, nullable=True)
        before = Optional(str, nullable=True)
        after = Optional(str, nullable=True)
        rule = Optional(str, nullable=True)
        policy = Optional(str, nullable=True)
        policy_version = Optional(int, nullable=True)
        composite_index(account_id, id)
        composite_index(account_id, action, at)

    class Outbox(db.Entity):
        _table_ = "rb_outbox"
        id = PrimaryKey(int, auto=True)
        to = Required(str)
        subject = Required(str)
        text = Required(str)
        html = Optional(str, nullable=True)
        invitation_id = Optional(str, nullable=True, index=True)
        status = Required(str)
        attempts = Required(int, default=0)
        next_attempt_at = Required(datetime)
        last_error = Optional(str, nullable=True)
        created_at = Required(datetime)
        sent_at = Optional(datetime)
        composite_index(status, next_attempt_at)
        # Schema step 4 (storage/migrations.py): appended, so it is the table's last column.
        claimed_by = Optional(str, nullable=True)


# --- Schema step 3 (storage/migrations.py): published policy versions -----------------------
# The only tables this step adds: rb_policy_version and rb_policy_activation. Both are
# append-only (a version is immutable; an activation is a new row, never an update), so
# max(id) of each table is a change counter replicas can compare cheaply.
def define_policy_entities(db: Database) -> None:
    """Policy versions published to the database, and which version each name activates."""

    class PolicyVersion(db.Entity):
        _table_ = "rb_policy_version"
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        version = Required(int)
        digest = Required(str)
        source = Required(LongStr, autostrip=False)  # byte-exact: the digest covers it
        published_by = Required(str)
        published_at = Required(datetime)
        composite_key(name, version)

    class PolicyActivation(db.Entity):
        _table_ = "rb_policy_activation"
        id = PrimaryKey(int, auto=True)
        name = Required(str, index=True)
        version = Required(int)
        activated_by = Required(str)
        activated_at = Required(datetime)
