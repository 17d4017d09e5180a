"""Invitations: invite, list, view, revoke, resend, and accept with the emailed token.

Every decision is the policy's (`invitation.*` with the role the invitation
grants); storage makes it inside the transaction that locks the account. The
token travels only in the email: no answer of these routes carries it.
"""

from __future__ import annotations

import falcon

from rolebook.api import contract
from rolebook.api.account_lookup import account_access, policy_unavailable
from rolebook.api.decisions import decider, require
from rolebook.api.mail.compose import invitation_message, valid_address
from rolebook.api.pagination import listing, page_params
from rolebook.api.problems import Problem, bad_request, not_found
from rolebook.api.services import Services
from rolebook.storage import InvitationRules
from rolebook.storage import errors as storage_errors


def _location(invitation: dict) -> str:
    return f"/v1/accounts/{invitation['account_id']}/invitations/{invitation['id']}"


def _inviter(services: Services, caller) -> str:
    """How the email names the inviter: "First Last (email)" when the names are known."""
    try:
        user = services.store.users.get(caller.id)
    except storage_errors.NotFound:
        return caller.email
    names = " ".join(n for n in (user.get("first_name"), user.get("last_name")) if n)
    return f"{names} ({caller.email})" if names else caller.email


def _message_maker(services: Services, access, caller):
    """The callback storage calls inside the transaction to render the queued email."""
    config, membership = services.config, access.policy.membership
    inviter = _inviter(services, caller)

    def make(invitation: dict, token: str) -> tuple[str, str, str, str]:
        return invitation_message(invitation, token, account_name=access.account["name"],
                                  inviter=inviter, public_url=config.effective_public_url,
                                  ttl_hours=membership.invitation_ttl_hours)
    return make


def _wake_mailer(services: Services) -> None:
    if services.mailer is not None:
        services.mailer.wake()


def _rules(services: Services, membership) -> InvitationRules:
    """The account's policy and the service's limits, as storage needs them."""
    config = services.config
    return InvitationRules(ttl_seconds=membership.invitation_ttl_hours * 3600,
                           single_email_scope=membership.single_email_scope,
                           per_account_per_hour=config.invitations_per_hour,
                           per_user_per_hour=config.invitations_per_user_per_hour)


class Invitations:
    def __init__(self, services: Services):
        self.services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response, account_id: str) -> None:
        caller = req.context.caller
        access = account_access(self.services, account_id, caller)
        body = contract.body(req, "InvitationCreate")
        policy, membership = access.policy, access.policy.membership
        if not valid_address(body["email"]):
            raise bad_request("email: not a plain email address (name@domain)",
                              [{"field": "email", "message": "not a plain email address"}])
        if body["role"] not in policy.roles:
            roles = ", ".join(policy.roles)
            raise bad_request(f"role: {body['role']!r} is not a role of {policy.ref} ({roles})",
                              [{"field": "role", "message": f"one of {roles}"}])
        first, last = body.get("first_name"), body.get("last_name")
        if membership.invitation_requires_names:
            missing = [f for f, v in (("first_name", first), ("last_name", last))
                       if v is None or not v.strip()]
            if missing:
                raise bad_request(
                    f"{missing[0]}: {policy.ref} requires the invitee's first and last name",
                    [{"field": f, "message": "required by the account's policy"}
                     for f in missing])
        invitation, _token = self.services.store.invitations.create(
            account_id, caller.id, email=body["email"], role=body["role"], first_name=first,
            last_name=last, rules=_rules(self.services, membership),
            decide=decider(self.services, access, caller),
            make_message=_message_maker(self.services, access, caller))
        _wake_mailer(self.services)
        resp.status = falcon.HTTP_201
        resp.location = _location(invitation)
        resp.media = invitation

    def on_get(self, req: falcon.Request, resp: falcon.Response, account_id: str) -> None:
        caller = req.context.caller
        access = account_access(self.services, account_id, caller)
        limit, cursor = page_params(req)
        status = req.get_param("status")
        require(self.services, access, caller, "invitation", "list")
        items, next_cursor = listing(self.services.store.invitations.list, account_id, limit,
                                     cursor, status)
        resp.media = {"items": items, "next_cursor": next_cursor}


class Invitation:
    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req, resp, account_id: str, invitation_id: str) -> None:
        caller = req.context.caller
        access = account_access(self.services, account_id, caller)
        invitation = self.services.store.invitations.get(account_id, invitation_id)
        require(self.services, access, caller, "invitation", "view",
                {"role": invitation["role"]}, invitation_id)
        resp.media = invitation

    def on_delete(self, req, resp, account_id: str, invitation_id: str) -> None:
        caller = req.context.caller
        access = account_access(self.services, account_id, caller)
        resp.media = self.services.store.invitations.revoke(
            account_id, caller.id, invitation_id,
            decide=decider(self.services, access, caller, invitation_id))


class Resend:
    def __init__(self, services: Services):
        self.services = services

    def on_post(self, req, resp, account_id: str, invitation_id: str) -> None:
        caller = req.context.caller
        access = account_access(self.services, account_id, caller)
        invitation, _token = self.services.store.invitations.resend(
            account_id, caller.id, invitation_id,
            rules=_rules(self.services, access.policy.membership),
            decide=decider(self.services, access, caller, invitation_id),
            make_message=_message_maker(self.services, access, caller))
        _wake_mailer(self.services)
        resp.media = invitation


class Accept:
    """Any signed-in user may try; storage checks the token and that the email matches."""

    def __init__(self, services: Services):
        self.services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        caller = req.context.caller
        body = contract.body(req, "AcceptRequest")
        _require_verified_email(caller, self.services.config.needs_verified_email)
        try:
            result = self.services.store.invitations.accept(
                body["token"], caller.id, caller.email, single_email_scope=self._one_account)
        except storage_errors.NotFound:
            # A replaced (resent) token is unknown to storage, like a made-up one; the answer
            # (and the accept page's) is the same for both, so it does not help token guessing.
            raise not_found("no invitation matches this token: it was mistyped, cut short, "
                            "or replaced by a newer email") from None
        resp.media = {"account_id": result["account"]["id"],
                      "invitation_id": result["invitation"]["id"],
                      "member": result["member"]}


    def _one_account(self, account: dict) -> bool:
        """Whether the account's policy lets an address belong to one account only; a policy
        this replica has not loaded refuses the acceptance (503) rather than guess."""
        policy = self.services.policies.for_account(account)
        if policy is None:
            raise policy_unavailable(account)
        return policy.membership.single_email_scope


def _require_verified_email(caller, required: bool) -> None:
    """An address the provider has not verified may belong to someone else: accepting with it
    is the classic takeover (register another's address at the provider, take their seat)."""
    if caller.email_verified is False or (required and caller.email_verified is None):
        said = "says it is not verified" if caller.email_verified is False else \
            "does not say it is verified (email_verified)"
        raise Problem(403, "email-not-verified", "Email address not verified",
                      f"your token's email address {said}; sign in with a verified address "
                      "to accept an invitation")
