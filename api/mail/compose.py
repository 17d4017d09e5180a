"""What an invitation email says, and how it becomes an RFC 5322 message.

The text is rendered when the invitation is created (inside its transaction,
so the outbox row holds exactly what the invitee will read); From, Date and
Message-ID are added when the row is sent. The Message-ID is stable per row,
so a retried delivery is recognisably the same message.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from urllib.parse import quote

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def one_line(value: str) -> str:
    """Header-safe: control characters (CR, LF...) become a single space."""
    return _CONTROL.sub(" ", value).strip()


def valid_address(value: str) -> bool:
    """A plain addr-spec: one @, nothing blank or control, parseable as an address."""
    if _CONTROL.search(value) or any(c.isspace() for c in value) or value.count("@") != 1:
        return False
    local, _, domain = value.partition("@")
    if not local or not domain or "<" in value or ">" in value or "," in value:
        return False
    try:
        Address(addr_spec=value)
    except (ValueError, IndexError):
        return False
    return True


def accept_link(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/invitations/accept?token={quote(token, safe='')}"


def invitation_message(invitation: dict, token: str, *, account_name: str, inviter: str,
                       public_url: str, ttl_hours: int) -> tuple[str, str, str, str]:
    """(to, subject, text, html) for an invitation; `inviter` is a display name or email."""
    link = accept_link(public_url, token)
    names = " ".join(n for n in (invitation.get("first_name"), invitation.get("last_name")) if n)
    greeting = f"Hello {names}," if names else "Hello,"
    account, role, who = one_line(account_name), invitation["role"], one_line(inviter)
    expires = invitation.get("expires_at") or ""
    subject = f"{who} invited you to {account}"
    text = (
        f"{greeting}\n\n"
        f"{who} invited you to join the account \"{account}\" with the role \"{role}\".\n\n"
        f"To accept, sign in as {invitation['email']} and open this link:\n\n"
        f"  {link}\n\n"
        f"The invitation is valid for {ttl_hours} hours (until {expires}) and works once.\n"
        "If you did not expect it, ignore this message.\n"
    )
    e = html.escape
    body = (
        "<!doctype html>\n<html><body>\n"
        f"<p>{e(greeting)}</p>\n"
        f"<p><strong>{e(who)}</strong> invited you to join the account "
        f"<strong>{e(account)}</strong> with the role <strong>{e(role)}</strong>.</p>\n"
        f"<p>To accept, sign in as {e(invitation['email'])} and open "
        f"<a href=\"{e(link, quote=True)}\">this invitation link</a>:<br>\n"
        f"<code>{e(link)}</code></p>\n"
        f"<p>The invitation is valid for {ttl_hours} hours (until {e(expires)}) and works "
        "once. If you did not expect it, ignore this message.</p>\n"
        "</body></html>\n"
    )
    return invitation["email"], subject, text, body


def _plain(text: str) -> bool:
    return text.isascii() and all(len(line) < 990 for line in text.splitlines())


def message_id(row: dict, mail_from: str) -> str:
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    if row.get("invitation_id") and row.get("id") is not None:
        return f"<rolebook.{row['invitation_id']}.{row['id']}@{domain}>"
    return make_msgid("rolebook", domain=domain)


def rfc5322(row: dict, mail_from: str, now: datetime | None = None) -> EmailMessage:
    """An outbox row as a multipart/alternative message (plain text first, then HTML)."""
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = row["to"]
    msg["Subject"] = one_line(row["subject"])
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = message_id(row, mail_from)
    msg["Auto-Submitted"] = "auto-generated"
    # Plain ASCII stays readable in the Maildir (no quoted-printable "=3D" in the link).
    msg.set_content(row["text"], cte="7bit" if _plain(row["text"]) else None)
    if row.get("html"):
        msg.add_alternative(row["html"], subtype="html",
                            cte="7bit" if _plain(row["html"]) else None)
    return msg
