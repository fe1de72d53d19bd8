"""A local SMTP server (aiosmtpd's `Controller`, on its own thread) that keeps what it receives: the tests'
and the demo's mail server.

`LocalSmtp.start(port)` listens on 127.0.0.1 (`start_blocking` for synchronous test fixtures); its
`mailbox` holds the e-mails received, newest last, parsed with the standard library (`ReceivedMail`), so a
test reads what a shopper would have got and the console's Demo mailbox shows them. `refuse_next` makes
the server answer the next recipients with a given reply (`451 ...` for a temporary refusal, `550 ...` for
a permanent one), as a real server does with greylisting or an unknown address.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, cast

from aiosmtpd.controller import Controller

from bot.runtime.clock import utcnow
from bot.runtime.localstripe import free_port

KEEP = 500  # the demo mailbox keeps this many, the oldest dropped first


@dataclass(frozen=True)
class ReceivedMail:
    id: int
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    received_at: datetime

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    def body(self, subtype: str) -> str:
        """The `plain` or `html` alternative's text ("" when it has none)."""
        part = self.message.get_body(preferencelist=(subtype,))
        return cast(EmailMessage, part).get_content() if part is not None else ""


class Mailbox:
    """aiosmtpd's handler: stores every message it accepts; thread-safe (the server runs on its own thread)."""

    def __init__(self, keep: int = KEEP) -> None:
        self._lock = threading.Lock()
        self._mails: deque[ReceivedMail] = deque(maxlen=keep)
        self._refusals: deque[str] = deque()
        self._next_id = 1

    def refuse_next(self, reply: str, times: int = 1) -> None:
        """Answer the next `times` recipients with `reply` (e.g. "451 4.7.1 Try again later")."""
        with self._lock:
            self._refusals.extend([reply] * times)

    @property
    def mails(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._mails)

    def clear(self) -> None:
        with self._lock:
            self._mails.clear()
            self._refusals.clear()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        with self._lock:
            if self._refusals:
                return self._refusals.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = cast(EmailMessage, BytesParser(policy=policy.default).parsebytes(envelope.content))
        with self._lock:
            mail = ReceivedMail(self._next_id, envelope.mail_from, tuple(envelope.rcpt_tos), message, utcnow())
            self._next_id += 1
            self._mails.append(mail)
        return "250 Message accepted for delivery"


class LocalSmtp:
    """A running local SMTP server: its port and its mailbox."""

    def __init__(self, port: int = 0) -> None:
        self.mailbox = Mailbox()
        # Port 0 is not aiosmtpd's "any": ask the system for a free one first.
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._controller = Controller(self.mailbox, hostname=self.host, port=self.port)

    def start_blocking(self) -> LocalSmtp:
        self._controller.start()  # waits on a thread until the server answers
        return self

    def stop_blocking(self) -> None:
        self._controller.stop()

    @classmethod
    async def start(cls, port: int = 0) -> LocalSmtp:
        server = cls(port)
        return await asyncio.to_thread(server.start_blocking)

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_blocking)
