"""Email claims: "one account per email" for policies that say so.

A claim row (policy, lowercase email) names the account that holds the address and
either the member (user id) or, while the address is only invited, the invitation. A unique key on
(policy, email) makes the database the arbiter when two accounts race: the loser's
commit fails and becomes Conflict. A claim held by an expired invitation may be
taken over. Functions here run inside the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pony.orm import Database

from rolebook.storage.errors import Conflict

TAKEN = "this email address already belongs to another account"


def _stale(db: Database, claim: Any, now: datetime) -> bool:
    """A claim kept only by an invitation that is no longer pending, or has expired."""
    if claim.user_id is not None or claim.invitation_id is None:
        return False
    invitation = db.Invitation.get(id=claim.invitation_id)
    return (
        invitation is None
        or invitation.status != "pending"
        or invitation.expires_at <= now
    )


def take(db: Database, policy: str, email_lower: str, account_id: str, now: datetime, *,
         invitation_id: str | None = None, user_id: str | None = None) -> None:
    """Claim `email_lower` for `account_id` (by an invitation or a member's user id).

    Conflict if another account holds it; within one account a member's claim wins.
    """
    claim = db.EmailClaim.get(policy=policy, email_lower=email_lower)
    if claim is None:
        db.EmailClaim(policy=policy, email_lower=email_lower, account_id=account_id,
                      invitation_id=invitation_id, user_id=user_id)
        return
    if claim.account_id == account_id:
        if claim.user_id is None:
            claim.invitation_id, claim.user_id = invitation_id, user_id
        return
    if not _stale(db, claim, now):
        raise Conflict(TAKEN)
    claim.account_id, claim.invitation_id, claim.user_id = account_id, invitation_id, user_id


def to_member(db: Database, policy: str, email_lower: str, account_id: str,
              user_id: str) -> None:
    """The invitee joined: the claim now stays as long as the membership."""
    claim = db.EmailClaim.get(policy=policy, email_lower=email_lower)
    if claim is not None and claim.account_id == account_id:
        claim.invitation_id, claim.user_id = None, user_id


def release_invitation(db: Database, policy: str, email_lower: str, invitation_id: str) -> None:
    """Drop the claim if this invitation is what holds it."""
    claim = db.EmailClaim.get(policy=policy, email_lower=email_lower)
    if claim is not None and claim.invitation_id == invitation_id:
        claim.delete()


def release_member(db: Database, account_id: str, user_id: str) -> None:
    """Drop the claim a member held in this account (on removal or leave).

    Found by user id, so it is released even if the user's email changed since joining.
    """
    db.EmailClaim.select(
        lambda c: c.account_id == account_id and c.user_id == user_id
    ).delete(bulk=True)


def release_account(db: Database, account_id: str) -> None:
    """Drop every claim of a deleted account."""
    db.EmailClaim.select(lambda c: c.account_id == account_id).delete(bulk=True)
