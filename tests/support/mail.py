"""Test helpers for invitation mail: wait on a condition, read a Maildir, pull out the link."""

from __future__ import annotations

import mailbox
import re
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

LINK = re.compile(r"https?://[^\s\"<>]+/invitations/accept\?token=[^\s\"<>&]+")


def wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def read_maildir(path: Path) -> list[EmailMessage]:
    """Every message in the Maildir (new/ and cur/), parsed with the modern email API."""
    if not all((Path(path) / sub).is_dir() for sub in ("tmp", "new", "cur")):
        return []
    box = mailbox.Maildir(path, factory=None, create=False)
    return [message_from_bytes(box.get_bytes(key), policy=policy.default) for key in box.iterkeys()]


def messages_to(path: Path, address: str) -> list[EmailMessage]:
    return [m for m in read_maildir(path) if str(m["To"]).lower() == address.lower()]


def wait_for_mail(path: Path, address: str, count: int = 1,
                  timeout: float = 15.0) -> list[EmailMessage]:
    """The messages to `address` once there are at least `count`, oldest first by Date."""
    found = wait_for(lambda: (lambda ms: ms if len(ms) >= count else None)(
        messages_to(path, address)), timeout, f"{count} message(s) to {address} in {path}")
    return found


def parts(message: EmailMessage) -> tuple[str, str]:
    """(plain text, html) of a multipart/alternative message."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None, "both a text/plain and a text/html part"
    return text.get_content(), html.get_content()


def accept_link(message: EmailMessage) -> str:
    text, _ = parts(message)
    match = LINK.search(text)
    assert match, f"no accept link in:\n{text}"
    return match.group(0)


def token_of(message: EmailMessage) -> str:
    return parse_qs(urlsplit(accept_link(message)).query)["token"][0]
