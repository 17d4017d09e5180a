"""Where sent mail goes: a Maildir on disk (the default) or an SMTP server.

    maildir:PATH                                  stdlib mailbox.Maildir, created if missing
    smtp://[user:pass@]host:port[?starttls=1]     smtplib; STARTTLS and login when asked

A transport's `send(message)` raises on failure; `PermanentFailure` means a
retry cannot help (the server refused the recipient for good).
"""

from __future__ import annotations

import mailbox
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

SMTP_TIMEOUT_SECONDS = 30.0
TRUE = ("1", "true", "yes", "on")


class PermanentFailure(Exception):
    """Delivery was refused in a way a retry would not change."""


class MaildirTransport:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"maildir:{self.path}"

    def send(self, message: EmailMessage) -> None:
        # Maildir writes into tmp/ and renames into new/: readers never see half a message.
        # Several processes may create it at once: make every folder, tolerating the others.
        # The messages hold live tokens: the folders are the owner's only.
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        for sub in ("tmp", "new", "cur"):
            (self.path / sub).mkdir(mode=0o700, exist_ok=True)
        box = mailbox.Maildir(self.path, create=False)
        box.add(message.as_bytes())


class SmtpTransport:
    def __init__(self, host: str, port: int = 25, user: str | None = None,
                 password: str | None = None, starttls: bool = False,
                 timeout: float = SMTP_TIMEOUT_SECONDS):
        self.host, self.port, self.user, self.password = host, port, user, password
        self.starttls, self.timeout = starttls, timeout

    def __repr__(self) -> str:  # never the password
        auth = f"{self.user}@" if self.user else ""
        return f"smtp://{auth}{self.host}:{self.port}{'?starttls=1' if self.starttls else ''}"

    def send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password or "")
            try:
                smtp.send_message(message)
            except smtplib.SMTPRecipientsRefused as exc:
                if all(code >= 500 for code, _ in exc.recipients.values()):
                    raise PermanentFailure(f"recipient refused: {exc.recipients}") from exc
                raise


def from_url(url: str) -> MaildirTransport | SmtpTransport:
    """The transport a --mail-url names; ValueError for anything else."""
    if url.startswith("maildir:"):
        path = url[len("maildir:"):]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise ValueError("maildir: needs a path, e.g. maildir:/var/lib/rolebook/mail")
        return MaildirTransport(path)
    parts = urlsplit(url)
    if parts.scheme == "smtp":
        if not parts.hostname:
            raise ValueError(f"smtp URL needs a host: {url!r}")
        query = parse_qs(parts.query)
        starttls = query.get("starttls", ["0"])[-1].lower() in TRUE
        return SmtpTransport(parts.hostname, parts.port or 25,
                             unquote(parts.username) if parts.username else None,
                             unquote(parts.password) if parts.password else None,
                             starttls)
    raise ValueError(f"unsupported mail URL {url!r}: use maildir:PATH or smtp://host:port")
