"""Email claims: "one account per email" for policies that say so.

Only membership binds an address: a claim row (policy, lowercase email) names the account
and the member (user id) that hold it, written when a creator makes an account or an
invitee accepts. A pending invitation binds nothing, so inviting someone else's address
into your own account blocks nobody (it once blocked the real company for 168 h, and
`resend` renewed the block). Invitations to the same address may be pending in several
accounts at once; the first to be accepted binds it, and the others can then be neither
accepted nor resent (Conflict, 409, naming why); they expire as usual. A unique key on
(policy, email) makes the database the arbiter when two acceptances race: the loser's
commit fails and becomes Conflict. Rows that earlier builds wrote for invitations (no user
id) bind nothing and are taken over. Functions here run inside the caller's transaction.
"""

from __future__ import annotations

from pony.orm import Database

from rolebook.storage.errors import Conflict

TAKEN = "this email address already belongs to another account"


def holder(db: Database, policy: str, email_lower: str):
    """The claim row of the address, if any (read once per decision: see `bind`)."""
    return db.EmailClaim.get(policy=policy, email_lower=email_lower)


def _taken(claim, account_id: str) -> bool:
    return claim is not None and claim.user_id is not None and claim.account_id != account_id


def refuse_if_taken(db: Database, policy: str, email_lower: str, account_id: str) -> None:
    """Conflict if a member of another account holds the address (before inviting it)."""
    if _taken(holder(db, policy, email_lower), account_id):
        raise Conflict(TAKEN)


def bind(db: Database, policy: str, email_lower: str, account_id: str, user_id: str) -> None:
    """The address now belongs to `user_id`'s membership of `account_id` (a creator, or an
    invitee who accepted); Conflict if a member of another account holds it. The row is
    read once: a claim another transaction commits after that read makes this one's
    insert fail on the unique key, which is Conflict too, never an overwrite."""
    claim = holder(db, policy, email_lower)
    if _taken(claim, account_id):
        raise Conflict(TAKEN)
    if claim is None:
        db.EmailClaim(policy=policy, email_lower=email_lower, account_id=account_id,
                      user_id=user_id)
    else:
        claim.account_id, claim.invitation_id, claim.user_id = account_id, None, user_id


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
