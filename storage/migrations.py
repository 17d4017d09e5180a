"""The ordered schema migrations: step N takes a database from version N-1 to N.

Rules for a new step: append it (never edit or reorder a released one), keep it small,
write SQL both SQLite and PostgreSQL run inside a transaction, and bring
storage/entities.py along in the same change; tests/storage/test_schema.py checks that
the latest version is what entities.py maps, on both databases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rolebook.storage import schema_v1


@dataclass(frozen=True)
class Step:
    version: int
    name: str
    why: str
    statements: Callable[[str], tuple[str, ...]]  # dialect ("sqlite" | "postgres") -> SQL


def _same_on_both(*sql: str) -> Callable[[str], tuple[str, ...]]:
    return lambda dialect: sql


STEPS: tuple[Step, ...] = (
    Step(1, "baseline",
         "the tables and indexes of the releases before schema versions, created where "
         "missing (an empty database gets them all)",
         schema_v1.statements),
    Step(2, "drop-membership-account-role-index",
         "earlier builds made idx_rb_membership__account_role (account, role); "
         "idx_rb_membership__account_role_user (account, role, user) answers every query it "
         "did, so it only slowed each membership write",
         _same_on_both('DROP INDEX IF EXISTS "idx_rb_membership__account_role"')),
    Step(3, "published-policy-versions",
         "policy versions published to the database and their activations, for replicas "
         "that serve --policy-source database (both tables append-only)",
         lambda dialect: tuple(sql.format(**schema_v1.TYPES[dialect]) for sql in (
             """CREATE TABLE "rb_policy_version" (
  "id" {serial},
  "name" TEXT NOT NULL,
  "version" INTEGER NOT NULL,
  "digest" TEXT NOT NULL,
  "source" TEXT NOT NULL,
  "published_by" TEXT NOT NULL,
  "published_at" {timestamp} NOT NULL,
  CONSTRAINT "unq_rb_policy_version__name_version" UNIQUE ("name", "version")
)""",
             """CREATE TABLE "rb_policy_activation" (
  "id" {serial},
  "name" TEXT NOT NULL,
  "version" INTEGER NOT NULL,
  "activated_by" TEXT NOT NULL,
  "activated_at" {timestamp} NOT NULL
)""",
             'CREATE INDEX "idx_rb_policy_activation__name" ON "rb_policy_activation" '
             '("name")'))),
    Step(4, "outbox-claims",
         "each outbox row names the sender (host:pid:random) that last claimed it, so a "
         "sender whose lease ran out can tell before it sends that another replica has "
         "claimed the message since, and not send it a second time",
         _same_on_both('ALTER TABLE "rb_outbox" ADD COLUMN "claimed_by" TEXT')),
)

LATEST = STEPS[-1].version
