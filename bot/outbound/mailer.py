"""The one module that speaks SMTP: an e-mail built with the standard library, sent with aiosmtplib.

- `build_message`: an `EmailMessage` with a text and an HTML alternative (UTF-8: a Chinese subject is
  encoded as RFC 2047 words by the standard library), a Message-ID, and `List-Unsubscribe` with
  `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058, which Gmail and Yahoo ask of bulk senders).
- `Mailer.send`: one message over one connection (STARTTLS, implicit TLS or none, as the settings say).
  A failure is a `MailError` whose `retryable` says what to do: a connection that failed, timed out or
  dropped, or a 4xx answer (greylisting, a full mailbox for now) may work later; a 5xx answer (no such
  address, refused for good) will not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from config.settings import Settings


@dataclass(frozen=True)
class MailSettings:
    """How to reach the SMTP server and who the e-mails are from (built from `Settings`)."""

    host: str
    port: int
    tls: str = "none"  # none | starttls | tls
    user: str | None = None
    password: str | None = None
    timeout_s: float = 30.0
    from_address: str = "shop@localhost"
    from_name: str = "PlusOne"

    @classmethod
    def from_settings(cls, settings: Settings) -> MailSettings | None:
        """None when no SMTP server is configured (no e-mail goes; rows wait)."""
        if not settings.smtp_host:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            tls=settings.smtp_tls,
            user=settings.smtp_user,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            timeout_s=settings.smtp_timeout_s,
            from_address=settings.mail_from_address,
            from_name=settings.mail_from_name,
        )


class MailError(Exception):
    """Sending failed; `retryable` says whether the same message may work later, `code` is the server's."""

    def __init__(self, reason: str, *, retryable: bool, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.code = code


def build_message(
    *,
    from_address: str,
    from_name: str,
    to: str,
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    unsubscribe_url: str | None,
    date: datetime,
) -> EmailMessage:
    """The e-mail as it goes out (pure: no I/O)."""
    message = EmailMessage()
    local, _, domain = from_address.partition("@")
    message["From"] = Address(display_name=from_name, username=local, domain=domain)
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    if unsubscribe_url:
        # RFC 2369 and RFC 8058: mail clients show an unsubscribe button that POSTs to the link.
        message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def classify(error: Exception) -> MailError:
    """An aiosmtplib error as a `MailError`: 4xx and connection trouble retry, 5xx does not."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused) and error.recipients:
        first = error.recipients[0]
        return MailError(f"{first.code} {first.message}", retryable=400 <= first.code < 500, code=first.code)
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        # Our login, not the reader's address: every e-mail waits until the setting is fixed (or runs out of tries).
        return MailError(f"{error.code} {error.message}", retryable=True, code=error.code)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        code = error.code
        return MailError(f"{code} {error.message}", retryable=not 500 <= code < 600, code=code)
    # Could not connect, timed out, the server hung up, TLS failed: the server may be back later.
    return MailError(f"{type(error).__name__}: {error}", retryable=True)


class Mailer:
    """Sends `EmailMessage`s to the configured SMTP server, one connection per message."""

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> None:
        s = self.settings
        try:
            await aiosmtplib.send(
                message,
                hostname=s.host,
                port=s.port,
                username=s.user,
                password=s.password,
                use_tls=s.tls == "tls",
                start_tls=s.tls == "starttls",
                timeout=s.timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError) as error:
            raise classify(error) from error
