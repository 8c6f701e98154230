"""E-mail through the administrator's SMTP server: stdlib ``smtplib`` on a worker thread.

Never logs the password; failures are logged with the server and the recipient only,
and never stop the caller (a notice by e-mail is a courtesy beside the browser's).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr

from crm_core.missed.models import MailSecurity, MailSettings

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class MailServer:
    """A snapshot of the settings row, safe to hand to a thread."""

    host: str
    port: int
    security: str
    username: str | None
    password: str | None
    sender: str

    @classmethod
    def of(cls, row: MailSettings) -> MailServer:
        return cls(row.host, row.port, row.security, row.username, row.password, row.sender)

    def __repr__(self) -> str:  # never print the password, even by accident
        return f"MailServer({self.host}:{self.port}, {self.security}, user={self.username!r})"


def build_message(server: MailServer, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr(("Telecrm", server.sender))
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)  # UTF-8, as Russian text needs
    return message


def send_now(server: MailServer, to: str, subject: str, body: str) -> None:
    """Send one message (blocking); raises ``smtplib.SMTPException`` or ``OSError``."""
    message = build_message(server, to, subject, body)
    with smtplib.SMTP(server.host, server.port, timeout=TIMEOUT_SECONDS) as smtp:
        if server.security == MailSecurity.STARTTLS:
            smtp.starttls(context=ssl.create_default_context())
        if server.username:
            smtp.login(server.username, server.password or "")
        smtp.send_message(message)


async def send(server: MailServer, to: str, subject: str, body: str) -> bool:
    """Send on a thread; False (and a log line without secrets) when it failed."""
    try:
        await asyncio.to_thread(send_now, server, to, subject, body)
    except (smtplib.SMTPException, OSError) as exc:
        log.warning("e-mail to %s through %s:%s not sent: %s", to, server.host, server.port,
                    type(exc).__name__ if isinstance(exc, smtplib.SMTPAuthenticationError)
                    else exc)
        return False
    return True
