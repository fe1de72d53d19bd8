"""The e-mail outbox: `enqueue_email` writes a row in the caller's transaction; `EmailSender` delivers rows.

- `enqueue_email` is keyed for idempotency (`key` unique): a replayed effect queues nothing the second
  time (it returns None). Each row gets its own open token (the pixel `/o/<token>.gif`).
- `EmailSender` (a `Loop`, started beside the Messenger outbox's sender in `bot.background`) claims due
  rows with a conditional UPDATE (`status = 'pending'` → `'sending'` with a lease), so two senders never
  take the same row; a row whose sender died is taken back once its lease ran out. The lease is renewed
  when the row's turn comes and is the sender's fencing token: a sender that lost it sends nothing.
  (A sender killed between the server's 250 and its record sends that one e-mail again after the lease:
  SMTP has no idempotency key; its Message-ID is the same, which some mailboxes, Gmail's among them, dedupe.)
  Before sending it looks again at consent: a marketing e-mail (any purpose but `transactional`) to a
  member who opted out, or to an address on the opt-out list (`email_opt_out`), ends `refused` with its
  reason and never goes.
  Each e-mail carries the unsubscribe link (`/u/<signed token>`, and `List-Unsubscribe` with RFC 8058's
  one-click POST) and the open pixel.
- A refusal the server may change its mind about (a 4xx, a connection that failed) is tried again later,
  doubling the wait from `backoff_base` up to `backoff_cap`, at most `max_attempts` times in all; a 5xx
  (no such address) fails the row at once. Time is the `now` passed in (`self.clock`; a test moves it).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.outbound.email_links import pixel_url, unsubscribe_url
from bot.outbound.mailer import Mailer, MailError, build_message
from bot.replies.email import footer_html, footer_text, text_as_html
from bot.runtime.clock import utcnow
from bot.runtime.loops import Loop
from bot.store.tables import EmailOptOut, EmailOutbox
from carts.sql import dialect_insert
from crm_bridge.consent import OptOutSource, apply_opt_in, apply_opt_out, is_opted_out
from crm_bridge.members import parse_email

log = logging.getLogger(__name__)


class EmailStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    REFUSED = "refused"


class EmailPurpose(StrEnum):
    JOURNEY = "journey"  # a journey's message (part of the marketing the member may opt out of)
    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"  # news of the member's own order: goes even after an opt-out


class EmailRefusal(StrEnum):
    """Why a row was not sent; shown in the reader's words by the pages that list e-mails."""

    OPTED_OUT = "opted_out"  # the member opted out of marketing
    ADDRESS_OPTED_OUT = "address_opted_out"  # the address used an unsubscribe link
    BAD_ADDRESS = "bad_address"  # not an e-mail address


async def enqueue_email(
    session: AsyncSession,
    *,
    key: str,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    member_id: int | None = None,
    locale: str,
    purpose: str,
    now: datetime | None = None,
) -> int | None:
    """Queue an e-mail; the new row's id, or None when `key` was already queued."""
    moment = now or utcnow()
    values = {
        "key": key,
        "member_id": member_id,
        "to_address": to.strip(),
        "subject": subject,
        "text": text,
        "html": html,
        "locale": locale,
        "purpose": purpose,
        "status": EmailStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": moment,
        "open_token": secrets.token_urlsafe(18),
        "created_at": moment,
    }
    insert = dialect_insert(session)
    stmt = insert(EmailOutbox).values(**values).on_conflict_do_nothing(index_elements=["key"])
    result = await session.execute(stmt.returning(EmailOutbox.id))
    return result.scalar_one_or_none()


async def address_opted_out(session: AsyncSession, address: str) -> bool:
    found = await session.execute(select(EmailOptOut.id).where(EmailOptOut.address == address.strip().lower()))
    return found.first() is not None


async def email_opted_out(session: AsyncSession, row: EmailOutbox) -> bool:
    """Whoever this e-mail went to has opted out: its member (crm_bridge.consent), else its address."""
    if row.member_id is not None:
        return await is_opted_out(session, row.member_id)
    return await address_opted_out(session, row.to_address)


async def set_email_opt_out(session: AsyncSession, row: EmailOutbox, *, out: bool, now: datetime) -> bool:
    """Opt whoever this e-mail went to out (or back in) from its link; True when it changed anything.

    A member's choice is kept on the member (it covers every channel's marketing); an address that is no
    member's goes on the opt-out list.
    """
    source = OptOutSource.EMAIL_LINK.value
    if row.member_id is not None:
        change = apply_opt_out if out else apply_opt_in
        return await change(session, row.member_id, source, now)
    address = row.to_address.strip().lower()
    if out:
        insert = dialect_insert(session)
        stmt = insert(EmailOptOut).values(address=address, source=source, created_at=now)
        result = await session.execute(stmt.on_conflict_do_nothing(index_elements=["address"]))
        return bool(result.rowcount)
    result = await session.execute(delete(EmailOptOut).where(EmailOptOut.address == address))
    return bool(result.rowcount)


async def refusal_for(session: AsyncSession, row: EmailOutbox) -> EmailRefusal | None:
    """Why this row may not go now, or None (pure of side effects: reads only)."""
    if parse_email(row.to_address) is None:
        return EmailRefusal.BAD_ADDRESS
    if row.purpose == EmailPurpose.TRANSACTIONAL.value:
        return None
    if row.member_id is not None and await is_opted_out(session, row.member_id):
        return EmailRefusal.OPTED_OUT
    if await address_opted_out(session, row.to_address):
        return EmailRefusal.ADDRESS_OPTED_OUT
    return None


@dataclass(frozen=True)
class EmailSettings:
    base_url: str  # where the links in e-mails point (Settings.public_base_url)
    link_key: bytes  # signs unsubscribe links (bot.outbound.email_links.link_key)
    max_attempts: int = 6
    backoff_base: timedelta = timedelta(minutes=1)
    backoff_cap: timedelta = timedelta(hours=2)
    lease: timedelta = timedelta(minutes=5)  # longer than an SMTP conversation may take
    batch: int = 20
    poll_s: float = 2.0


def backoff(attempts: int, settings: EmailSettings) -> timedelta:
    """The wait after the `attempts`-th try failed for now: doubling, capped."""
    return min(settings.backoff_cap, settings.backoff_base * 2 ** max(attempts - 1, 0))


@dataclass(frozen=True)
class Claimed:
    """A claimed row, as plain data."""

    id: int
    member_id: int | None
    to_address: str
    subject: str
    text: str
    html: str | None
    locale: str
    purpose: str
    attempts: int  # including this one
    open_token: str
    lease_until: datetime  # the lease this sender holds; a row whose lease changed is someone else's now


class EmailSender(Loop):
    """Delivers due `email_outbox` rows through the `Mailer`, a batch per round; polls when idle."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], mailer: Mailer, settings: EmailSettings) -> None:
        super().__init__("plusone-email")
        self.sessions = sessions
        self.mailer = mailer
        self.settings = settings
        self.clock: Callable[[], datetime] = utcnow  # a test moves it
        self.sent = 0

    async def loop(self) -> None:
        while not self.stopping:
            try:
                handled = await self.run_once()
            except Exception:
                log.exception("%s: a round failed; its rows are taken back once their lease runs out", self.name)
                handled = 0
            if not handled:
                await self.sleep(self.settings.poll_s)

    async def run_once(self, now: datetime | None = None) -> int:
        """Claim due rows, refuse or send each, record the outcome; the number handled."""
        rows = await self.claim(now or self.clock())
        await self.send_claimed(rows, now)
        return len(rows)

    async def send_claimed(self, rows: list[Claimed], now: datetime | None = None) -> None:
        """Send the rows this sender claimed, one after the other. Before each, its lease is renewed from
        the time now, and only if it is still the lease this sender set: a row whose lease ran out while
        earlier ones took long (a server that times out) may have been taken back by another sender, and
        is then left to it, never sent twice."""
        for row in rows:
            moment = now or self.clock()
            renewed = await self._renew(row, moment)
            if renewed is not None:
                await self._deliver(renewed, moment)

    async def _renew(self, row: Claimed, now: datetime) -> Claimed | None:
        table = EmailOutbox.__table__
        lease = now + self.settings.lease
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(table)
                .where(
                    table.c.id == row.id,
                    table.c.status == EmailStatus.SENDING.value,
                    table.c.lease_until == row.lease_until,
                )
                .values(lease_until=lease)
            )
        return replace(row, lease_until=lease) if result.rowcount == 1 else None

    async def claim(self, now: datetime) -> list[Claimed]:
        table = EmailOutbox.__table__
        async with self.sessions() as session, session.begin():
            # A sender that died mid-round: its rows go back to the queue once the lease ran out.
            await session.execute(
                update(table)
                .where(table.c.status == EmailStatus.SENDING.value, table.c.lease_until < now)
                .values(status=EmailStatus.PENDING.value, lease_until=None)
            )
            due = await session.execute(
                select(table.c.id)
                .where(table.c.status == EmailStatus.PENDING.value, table.c.next_attempt_at <= now)
                .order_by(table.c.id)
                .limit(self.settings.batch)
            )
            ids = list(due.scalars().all())
            if not ids:
                return []
            # Conditional: a row another sender claimed between our read and here is not ours.
            claimed = await session.execute(
                update(table)
                .where(table.c.id.in_(ids), table.c.status == EmailStatus.PENDING.value)
                .values(
                    status=EmailStatus.SENDING.value,
                    lease_until=now + self.settings.lease,
                    attempts=table.c.attempts + 1,
                )
                .returning(
                    table.c.id,
                    table.c.member_id,
                    table.c.to_address,
                    table.c.subject,
                    table.c.text,
                    table.c.html,
                    table.c.locale,
                    table.c.purpose,
                    table.c.attempts,
                    table.c.open_token,
                    table.c.lease_until,
                )
            )
            return sorted((Claimed(*r) for r in claimed.all()), key=lambda c: c.id)

    async def _deliver(self, row: Claimed, now: datetime) -> None:
        async with self.sessions() as session:
            orm = await session.get(EmailOutbox, row.id)
            refusal = await refusal_for(session, orm) if orm is not None else None
        if refusal is not None:
            await self._record(row, status=EmailStatus.REFUSED, refusal=refusal.value)
            return
        s = self.settings
        unsubscribe = unsubscribe_url(s.base_url, s.link_key, row.id)
        html = (row.html or text_as_html(row.text)) + footer_html(
            row.locale, unsubscribe, pixel_url(s.base_url, row.open_token)
        )
        domain = self.mailer.settings.from_address.partition("@")[2] or "localhost"
        message_id = f"<plusone.{row.id}.{row.open_token[:12]}@{domain}>"
        message = build_message(
            from_address=self.mailer.settings.from_address,
            from_name=self.mailer.settings.from_name,
            to=row.to_address,
            subject=row.subject,
            text=row.text + footer_text(row.locale, unsubscribe),
            html=html,
            message_id=message_id,
            unsubscribe_url=unsubscribe,
            date=now,
        )
        try:
            await self.mailer.send(message)
        except MailError as error:
            if error.retryable and row.attempts < s.max_attempts:
                log.info("e-mail %s: %s; trying again later", row.id, error.reason)
                later = now + backoff(row.attempts, s)
                await self._record(row, status=EmailStatus.PENDING, error=error.reason, next_attempt_at=later)
            else:
                log.warning("e-mail %s failed: %s", row.id, error.reason)
                await self._record(row, status=EmailStatus.FAILED, error=error.reason)
            return
        self.sent += 1
        await self._record(row, status=EmailStatus.SENT, sent_at=now, message_id=message_id, error=None)

    async def _record(self, row: Claimed, *, status: EmailStatus, **values: object) -> None:
        table = EmailOutbox.__table__
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(table)
                .where(
                    table.c.id == row.id,
                    table.c.status == EmailStatus.SENDING.value,
                    table.c.lease_until == row.lease_until,
                )
                .values(status=status.value, lease_until=None, **values)
            )
