"""Outbox: emails queued in the same transaction as the change that caused them.

API:
    due(now=None, limit=10, lease_seconds=60, claimer=None) -> list of message dicts
        Pending rows whose next_attempt_at has come, oldest first. Each returned row is
        claimed: leased (next_attempt_at pushed `lease_seconds` ahead) and named claimed by
        `claimer` (a fresh random name when None), so another process does not send it too;
        on PostgreSQL rows another transaction is claiming are skipped (FOR UPDATE SKIP
        LOCKED).
    renew(message_id, claimer, lease_seconds=60) -> bool
        True, with the lease pushed ahead, while the row is pending and still `claimer`'s;
        False once another sender claimed it (this one's lease ran out), it was sent or
        given up, or deleted. A sender asks right before each send.
    mark_sent(message_id) -> None
        Recorded whoever claimed the row last, so a sender whose lease ran out mid-send
        still stops the new claimant (its renew answers False); a row already sent is left
        as it is. Also scrubs the body: it carried the invitation token, which is stored
        nowhere else in clear. Unsent bodies are deleted when their invitation is resent
        or revoked.
    mark_failed(message_id, error, next_attempt_at=None, claimer=None) -> None
        With next_attempt_at the row stays pending for a retry; None gives up (failed).
        With `claimer`, ignored unless the row is pending and still that sender's.
    get(message_id) -> message dict | raises NotFound
    backlog() -> (pending rows, age in seconds of the oldest, 0.0 when none)
        What /metrics reports; reads the (status, next_attempt_at) index's pending rows.

Message dict: {"id", "to", "subject", "text", "html", "invitation_id", "status",
"attempts", "next_attempt_at", "last_error", "created_at", "sent_at", "claimed_by"}.
Marking a row also updates its invitation's delivery status, attempts and last error.
A row deleted meanwhile (its invitation was resent or revoked) is ignored.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timedelta
from typing import Any

from pony.orm import select

from rolebook.storage.base import Repository, check_limit, iso
from rolebook.storage.errors import NotFound


def message_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "to": row.to,
        "subject": row.subject,
        "text": row.text,
        "html": row.html,
        "invitation_id": row.invitation_id,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at),
        "last_error": row.last_error,
        "created_at": iso(row.created_at),
        "sent_at": iso(row.sent_at),
        "claimed_by": row.claimed_by,
    }


def new_claimer() -> str:
    """A sender's name in claimed_by: host and pid for operators, random so two never match."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


SCRUBBED = "(sent; body removed because it held an invitation token)"


class OutboxRepo(Repository):
    def due(self, now: datetime | None = None, limit: int = 10, lease_seconds: int = 60,
            claimer: str | None = None) -> list[dict[str, Any]]:
        check_limit(limit)
        claimer = claimer or new_claimer()

        def run() -> list[dict[str, Any]]:
            db = self.db
            at = now or self.now()
            rows = select(
                o for o in db.Outbox if o.status == "pending" and o.next_attempt_at <= at
            ).order_by(lambda o: o.id).for_update(skip_locked=True)[:limit]
            result = [{**message_dict(o), "claimed_by": claimer} for o in rows]
            for row in rows:
                row.next_attempt_at = at + timedelta(seconds=lease_seconds)
                row.claimed_by = claimer
            return result

        return self._write(run)

    def renew(self, message_id: int, claimer: str, lease_seconds: int = 60) -> bool:
        def run() -> bool:
            row = self.db.Outbox.get_for_update(id=message_id)
            if row is None or row.status != "pending" or row.claimed_by != claimer:
                return False
            row.next_attempt_at = self.now() + timedelta(seconds=lease_seconds)
            return True

        return self._write(run)

    def get(self, message_id: int) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            row = self.db.Outbox.get(id=message_id)
            if row is None:
                raise NotFound("message not found")
            return message_dict(row)

        return self._read(run)

    def backlog(self) -> tuple[int, float]:
        def run() -> tuple[int, float]:
            db = self.db
            count = select(o for o in db.Outbox if o.status == "pending").count()
            oldest = select(o.created_at for o in db.Outbox if o.status == "pending").min()
            age = (self.now() - oldest).total_seconds() if oldest else 0.0
            return count, max(0.0, age)

        return self._read(run)

    def _lock_invitation_then_row(self, message_id: int) -> tuple[Any, Any]:
        """Lock the invitation before its outbox row, in the order revoke and resend use
        (they update the invitation, then delete its unsent rows), so the two never deadlock."""
        db = self.db
        invitation_id = select(o.invitation_id for o in db.Outbox if o.id == message_id).first()
        invitation = db.Invitation.get_for_update(id=invitation_id) if invitation_id else None
        return invitation, db.Outbox.get(id=message_id)

    def mark_sent(self, message_id: int) -> None:
        def run() -> None:
            now = self.now()
            invitation, row = self._lock_invitation_then_row(message_id)
            if row is None or row.status == "sent":
                return
            row.status, row.sent_at, row.attempts = "sent", now, row.attempts + 1
            row.text, row.html = SCRUBBED, None  # the body holds a live invitation token
            if invitation:
                invitation.delivery_status = "sent"
                invitation.delivery_attempts += 1

        self._write(run)

    def mark_failed(self, message_id: int, error: str, next_attempt_at: datetime | None = None,
                    claimer: str | None = None) -> None:
        def run() -> None:
            invitation, row = self._lock_invitation_then_row(message_id)
            if row is None:
                return
            if claimer is not None and (row.status != "pending" or row.claimed_by != claimer):
                return  # another sender holds it now and records its own outcome
            row.attempts += 1
            row.last_error = error
            if next_attempt_at is None:
                row.status = "failed"
            else:
                row.next_attempt_at = next_attempt_at
            if invitation:
                invitation.delivery_status = "failed" if next_attempt_at is None else "queued"
                invitation.delivery_attempts += 1
                invitation.last_error = error

        self._write(run)
