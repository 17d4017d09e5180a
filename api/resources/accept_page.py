"""The page an invitation email links to: `GET /invitations/accept?token=...`.

It shows what the invitation is (account, role, invited address, expiry, status)
without consuming it, and offers a form that POSTs the token to
`/v1/invitations/accept` with the visitor's sign-in token. The page is plain
HTML from `api/accept_page.html`: no cookies, nothing loaded from elsewhere, and
a Content-Security-Policy that admits only its own inline script and style, by
hash. Every value from storage is HTML-escaped here, and the script writes with
textContent only. The invitation token is in the URL, so nothing is cached and
no Referer leaves the page.
"""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path

import falcon

from rolebook.api.pages import SLOT, security_headers
from rolebook.api.services import Services
from rolebook.storage import errors as storage_errors

TEMPLATE = (Path(__file__).resolve().parent.parent / "accept_page.html").read_text(
    encoding="utf-8")
HEADERS = security_headers(TEMPLATE)
MAX_TOKEN_LENGTH = 512  # issued tokens are 43 characters; longer ones cannot be ours

e = html.escape


def render(title: str, main: str) -> str:
    """The page: `title` is text (escaped here), `main` is HTML built from escaped parts."""
    values = {"title": e(title), "main": main}
    return SLOT.sub(lambda m: values[m.group(1)], TEMPLATE)


def _when(stamp: str | None) -> str:
    """An ISO time as readable UTC inside <time>, for people and for machines."""
    if not stamp:
        return "—"
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return e(stamp)
    return (f'<time datetime="{e(stamp, quote=True)}">'
            f"{e(moment.strftime('%Y-%m-%d %H:%M'))} UTC</time>")


STATUS_TEXT = {
    "pending": "open: waiting for you to accept",
    "accepted": "already used",
    "revoked": "withdrawn",
    "expired": "expired",
}

GONE = {
    "accepted": ("This invitation has already been used",
                 "It was accepted {when}. An invitation link works once: if that was you, "
                 "you are already a member of {account}."),
    "revoked": ("This invitation was withdrawn",
                "Someone in {account} withdrew it {when}. Ask them for a new invitation "
                "if you still need access."),
    "expired": ("This invitation has expired",
                "It expired {when}. Ask someone in {account} to send it again."),
}


def _details(preview: dict) -> str:
    invitation, account = preview["invitation"], preview["account"]
    status = invitation["status"]
    rows = [
        ("Account", f"<strong>{e(account['name'])}</strong>"),
        ("Role", f"<strong>{e(invitation['role'])}</strong>"),
        ("Invited address", e(invitation["email"])),
        ("Expires", _when(invitation["expires_at"])),
        ("Status", f'<span id="invitation-status">{e(STATUS_TEXT.get(status, status))}</span>'),
    ]
    cells = "\n".join(f"  <dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    return f'<dl aria-label="The invitation">\n{cells}\n</dl>'


def _form(token: str, preview: dict) -> str:
    email = e(preview["invitation"]["email"])
    return (
        f'<form id="accept-form" data-token="{e(token, quote=True)}" '
        f'data-account="{e(preview["account"]["name"], quote=True)}" novalidate>\n'
        '<label for="signin-token">Your sign-in token</label>\n'
        '<p class="hint" id="signin-token-hint">The bearer token (a JWT) that says who you are. '
        "In a product built on rolebook, the app you are signed in to already holds it and "
        "fills this in. Standalone, an administrator mints one with "
        f"<code>rolebook token --sub YOUR-USER-ID --email {email}</code>. "
        f"Its email must be the invited address, {email}.</p>\n"
        '<textarea id="signin-token" name="signin-token" aria-describedby="signin-token-hint" '
        'autocomplete="off" autocapitalize="off" spellcheck="false" required></textarea>\n'
        '<button type="submit" id="accept-button">Accept invitation</button>\n'
        "</form>\n"
        "<noscript><p>Accepting needs JavaScript in this page. Without it, POST "
        '<code>{"token": "..."}</code> to <code>/v1/invitations/accept</code> with '
        "<code>Authorization: Bearer &lt;your sign-in token&gt;</code>.</p></noscript>\n"
        '<div id="outcome" class="outcome" role="status" aria-live="polite" tabindex="-1">'
        "</div>"
    )


def _greeting(invitation: dict) -> str:
    names = " ".join(n for n in (invitation.get("first_name"), invitation.get("last_name")) if n)
    return f"<p>Hello {e(names)},</p>\n" if names else ""


def pending_page(token: str, preview: dict) -> str:
    invitation, account = preview["invitation"], preview["account"]
    main = (
        f"<h1>You are invited to join {e(account['name'])}</h1>\n"
        f"{_greeting(invitation)}"
        f"<p>This invitation gives the address {e(invitation['email'])} the role "
        f"<strong>{e(invitation['role'])}</strong> in the account "
        f"<strong>{e(account['name'])}</strong>. It works once.</p>\n"
        f"{_details(preview)}\n{_form(token, preview)}"
    )
    return render(f"Invitation to {account['name']}", main)


def gone_page(preview: dict) -> str:
    invitation, account = preview["invitation"], preview["account"]
    status = invitation["status"]
    when = {"accepted": invitation.get("accepted_at"), "revoked": invitation.get("revoked_at"),
            "expired": invitation.get("expires_at")}.get(status)
    title, text = GONE.get(status, (f"This invitation is {status}", "It cannot be accepted."))
    moment = f"on {_when(when)}" if when else "earlier"
    named = f"<strong>{e(account['name'])}</strong>"
    main = (f"<h1>{e(title)}</h1>\n<p>{text.format(when=moment, account=named)}</p>\n"
            f"{_details(preview)}")
    return render(title, main)


def message_page(title: str, text: str) -> str:
    return render(title, f"<h1>{e(title)}</h1>\n<p>{e(text)}</p>")


INVALID = message_page(
    "This invitation link is not valid",
    "No invitation matches this link. It may have been mistyped or cut short, or replaced by "
    "a newer invitation email. Ask the person who invited you to send it again.")
INCOMPLETE = message_page(
    "This invitation link is incomplete",
    "The link has no invitation token. Open the complete link from the invitation email; "
    "if your mail program split it over two lines, join them.")


class AcceptPage:
    """No sign-in: whoever holds the link may see what it offers; accepting needs a token."""

    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = (req.get_param("token") or "").strip()
        if not token:
            return self._answer(resp, falcon.HTTP_400, INCOMPLETE)
        try:
            if len(token) > MAX_TOKEN_LENGTH:
                raise storage_errors.NotFound("invitation not found")
            preview = self.services.store.invitations.preview(token)
        except (storage_errors.NotFound, UnicodeError):
            return self._answer(resp, falcon.HTTP_404, INVALID)
        if preview["invitation"]["status"] != "pending":
            return self._answer(resp, falcon.HTTP_410, gone_page(preview))
        return self._answer(resp, falcon.HTTP_200, pending_page(token, preview))

    @staticmethod
    def _answer(resp: falcon.Response, status: str, page: str) -> None:
        resp.status = status
        resp.content_type = falcon.MEDIA_HTML
        resp.set_headers(HEADERS)
        resp.text = page
