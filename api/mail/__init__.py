"""Invitation email: composing messages, the transports, and the outbox sender thread.

    compose.invitation_message(...)  -> (to, subject, text, html)  queued with the change
    compose.rfc5322(row, mail_from)  -> EmailMessage                 built when it is sent
    transports.from_url(url)         -> MaildirTransport | SmtpTransport
    sender.OutboxSender              a thread per process that delivers due outbox rows
"""

from rolebook.api.mail.sender import OutboxSender, mailer_for
from rolebook.api.mail.transports import MaildirTransport, SmtpTransport, from_url

__all__ = ["MaildirTransport", "OutboxSender", "SmtpTransport", "from_url", "mailer_for"]
