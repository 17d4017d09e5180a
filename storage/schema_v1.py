"""Schema version 1, frozen: the tables and indexes Pony's create_tables made from
storage/entities.py up to the release that introduced schema versions.

Frozen on purpose: a migration must do the same thing in every later release, so
version 1 may not be regenerated from entities.py once entities.py moves on (a test
compares a database migrated to the latest version with what entities.py maps).
Every statement is IF NOT EXISTS, as Pony's create_tables created only what was
missing: on an empty database this creates everything; on a database an earlier build
made, nothing (or what that build lacked). One text for both databases; the two column
types they spell differently are filled in per dialect. Foreign keys carry the names
Pony gave them.
"""

from __future__ import annotations

TYPES = {
    "sqlite": {"timestamp": "DATETIME", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT"},
    "postgres": {"timestamp": "TIMESTAMP", "serial": "SERIAL PRIMARY KEY"},
}

DDL = """
CREATE TABLE IF NOT EXISTS "rb_account" (
  "id" TEXT NOT NULL PRIMARY KEY,
  "name" TEXT NOT NULL,
  "policy" TEXT NOT NULL,
  "policy_version" INTEGER,
  "created_at" {timestamp} NOT NULL,
  "created_by" TEXT NOT NULL,
  "version" INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS "rb_audit_event" (
  "id" {serial},
  "account_id" TEXT NOT NULL,
  "at" {timestamp} NOT NULL,
  "actor" TEXT NOT NULL,
  "action" TEXT NOT NULL,
  "target" TEXT,
  "before" TEXT,
  "after" TEXT,
  "rule" TEXT,
  "policy" TEXT,
  "policy_version" INTEGER
);
CREATE INDEX IF NOT EXISTS "idx_rb_audit_event__account_id_action_at"
  ON "rb_audit_event" ("account_id", "action", "at");
CREATE INDEX IF NOT EXISTS "idx_rb_audit_event__account_id_id"
  ON "rb_audit_event" ("account_id", "id");
CREATE TABLE IF NOT EXISTS "rb_email_claim" (
  "id" {serial},
  "policy" TEXT NOT NULL,
  "email_lower" TEXT NOT NULL,
  "account_id" TEXT NOT NULL,
  "invitation_id" TEXT,
  "user_id" TEXT,
  CONSTRAINT "unq_rb_email_claim__policy_email_lower" UNIQUE ("policy", "email_lower")
);
CREATE INDEX IF NOT EXISTS "idx_rb_email_claim__account_id" ON "rb_email_claim" ("account_id");
CREATE TABLE IF NOT EXISTS "rb_invitation" (
  "id" TEXT NOT NULL PRIMARY KEY,
  "account" TEXT NOT NULL CONSTRAINT "fk_rb_invitation__account"
    REFERENCES "rb_account" ("id") ON DELETE CASCADE,
  "email" TEXT NOT NULL,
  "email_lower" TEXT NOT NULL,
  "role" TEXT NOT NULL,
  "first_name" TEXT,
  "last_name" TEXT,
  "token_hash" TEXT UNIQUE NOT NULL,
  "status" TEXT NOT NULL,
  "expires_at" {timestamp} NOT NULL,
  "invited_by" TEXT NOT NULL,
  "created_at" {timestamp} NOT NULL,
  "accepted_by" TEXT,
  "accepted_at" {timestamp},
  "revoked_at" {timestamp},
  "delivery_status" TEXT NOT NULL,
  "delivery_attempts" INTEGER NOT NULL,
  "last_error" TEXT
);
CREATE INDEX IF NOT EXISTS "idx_rb_invitation__account_created_at"
  ON "rb_invitation" ("account", "created_at");
CREATE INDEX IF NOT EXISTS "idx_rb_invitation__account_email_lower"
  ON "rb_invitation" ("account", "email_lower");
CREATE TABLE IF NOT EXISTS "rb_outbox" (
  "id" {serial},
  "to" TEXT NOT NULL,
  "subject" TEXT NOT NULL,
  "text" TEXT NOT NULL,
  "html" TEXT,
  "invitation_id" TEXT,
  "status" TEXT NOT NULL,
  "attempts" INTEGER NOT NULL,
  "next_attempt_at" {timestamp} NOT NULL,
  "last_error" TEXT,
  "created_at" {timestamp} NOT NULL,
  "sent_at" {timestamp}
);
CREATE INDEX IF NOT EXISTS "idx_rb_outbox__invitation_id" ON "rb_outbox" ("invitation_id");
CREATE INDEX IF NOT EXISTS "idx_rb_outbox__status_next_attempt_at"
  ON "rb_outbox" ("status", "next_attempt_at");
CREATE TABLE IF NOT EXISTS "rb_user" (
  "id" TEXT NOT NULL PRIMARY KEY,
  "email" TEXT NOT NULL,
  "email_lower" TEXT NOT NULL,
  "first_name" TEXT,
  "last_name" TEXT
);
CREATE INDEX IF NOT EXISTS "idx_rb_user__email_lower" ON "rb_user" ("email_lower");
CREATE TABLE IF NOT EXISTS "rb_membership" (
  "account" TEXT NOT NULL CONSTRAINT "fk_rb_membership__account"
    REFERENCES "rb_account" ("id") ON DELETE CASCADE,
  "user" TEXT NOT NULL CONSTRAINT "fk_rb_membership__user"
    REFERENCES "rb_user" ("id") ON DELETE CASCADE,
  "role" TEXT NOT NULL,
  "joined_at" {timestamp} NOT NULL,
  PRIMARY KEY ("account", "user")
);
CREATE INDEX IF NOT EXISTS "idx_rb_membership__account_role_user"
  ON "rb_membership" ("account", "role", "user");
CREATE INDEX IF NOT EXISTS "idx_rb_membership__user" ON "rb_membership" ("user");
"""

TABLES = ("rb_account", "rb_audit_event", "rb_email_claim", "rb_invitation", "rb_outbox",
          "rb_user", "rb_membership")


def statements(dialect: str) -> tuple[str, ...]:
    """Version 1's DDL for `dialect` ("sqlite" or "postgres"), one statement each."""
    text = DDL.format(**TYPES[dialect])
    return tuple(s.strip() for s in text.split(";") if s.strip())
