"""The outbox: everything we send to Meta is first a SQL row, then delivered by `OutboxSender`.

- `enqueue_*` write the row in the caller's transaction (the effect that caused it), keyed for
  idempotency, so a replayed event never queues a message twice.
- The sender claims due rows (oldest first, one at a time per recipient so messages keep their order),
  checks Meta's rules (`bot.messaging_rules`) and the shared rate limit, calls the Graph adapter and
  records the outcome: sent (with Meta's id), retry later with back-off and jitter, failed or refused
  with the reason in words, on the row, on the conversation's message and on the comment log.
- A crash between Meta's answer and our record leaves a row in `sending`; Meta's echo carries our
  metadata (`plusone:outbox:<id>`) and confirms it (`confirm_from_echo`). Only a row whose lease and echo
  grace both ran out without an echo is tried again.
- A Page whose token Meta rejects is paused (its rows wait, nothing is reported as sent) and an alert is
  logged; the sender probes it and resumes when the token works again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.conversations import BOT_METADATA_PREFIX, fetch_or_create_conversation
from bot.db import utcnow
from bot.graph import GraphClient, GraphError, GraphErrorClass, SendResult
from bot.messaging_rules import Author, SendDecision, decide_message, decide_private_reply
from bot.rate_limit import SendRateLimiter
from bot.render import with_metadata
from bot.tables import CommentLog, Conversation, Message, OutboxMessage, PageState

log = logging.getLogger(__name__)


class OutboxKind(StrEnum):
    MESSAGE = "message"
    PRIVATE_REPLY = "private_reply"
    COMMENT_REPLY = "comment_reply"
    HIDE_COMMENT = "hide_comment"
    UNHIDE_COMMENT = "unhide_comment"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    REFUSED = "refused"


def outbox_metadata(outbox_id: int) -> str:
    return f"{BOT_METADATA_PREFIX}outbox:{outbox_id}"


def parse_outbox_metadata(metadata: str | None) -> int | None:
    prefix = f"{BOT_METADATA_PREFIX}outbox:"
    if metadata and metadata.startswith(prefix) and metadata[len(prefix) :].isdigit():
        return int(metadata[len(prefix) :])
    return None


async def _insert(session: AsyncSession, values: dict[str, Any]) -> OutboxMessage | None:
    """Insert unless the idempotency key exists; the new row, or None when it was already queued."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    values = {"status": OutboxStatus.PENDING.value, "attempts": 0, "next_attempt_at": now, "created_at": now, **values}
    stmt = insert(OutboxMessage).values(**values).on_conflict_do_nothing(index_elements=["idempotency_key"])
    result = await session.execute(stmt.returning(OutboxMessage.id))
    new_id = result.scalar_one_or_none()
    return None if new_id is None else await session.get(OutboxMessage, new_id)


async def enqueue_message(
    session: AsyncSession, *, key: str, page_id: str, psid: str, message: dict[str, Any], author: Author = Author.BOT
) -> OutboxMessage | None:
    """Queue a Messenger message to a shopper. Whether it may go (window, tag) is decided at send time."""
    return await _insert(
        session,
        {
            "idempotency_key": key,
            "page_id": page_id,
            "kind": OutboxKind.MESSAGE.value,
            "psid": psid,
            "author": author.value,
            "payload": json.dumps(message),
        },
    )


async def enqueue_private_reply(
    session: AsyncSession,
    *,
    page_id: str,
    comment_id: str,
    message: dict[str, Any],
    comment_created_at: datetime | None,
    psid: str | None = None,
) -> OutboxMessage | None:
    """Queue the one private reply a comment may get; None if it already has one queued or sent."""
    row = await _insert(
        session,
        {
            "idempotency_key": f"private_reply:{comment_id}",
            "page_id": page_id,
            "kind": OutboxKind.PRIVATE_REPLY.value,
            "comment_id": comment_id,
            "psid": psid,
            "comment_created_at": comment_created_at,
            "payload": json.dumps(message),
        },
    )
    if row is not None:
        await session.execute(
            update(CommentLog).where(CommentLog.comment_id == comment_id).values(reply_status="queued")
        )
    return row


async def enqueue_comment_reply(
    session: AsyncSession, *, key: str, page_id: str, comment_id: str, text: str
) -> OutboxMessage | None:
    """Queue a public reply under a comment (no prices or personal data: anyone can read it)."""
    return await _insert(
        session,
        {
            "idempotency_key": key,
            "page_id": page_id,
            "kind": OutboxKind.COMMENT_REPLY.value,
            "comment_id": comment_id,
            "payload": json.dumps({"text": text}),
        },
    )


async def enqueue_hide_comment(
    session: AsyncSession, *, key: str, page_id: str, comment_id: str, hidden: bool = True
) -> OutboxMessage | None:
    kind = OutboxKind.HIDE_COMMENT if hidden else OutboxKind.UNHIDE_COMMENT
    return await _insert(
        session,
        {"idempotency_key": key, "page_id": page_id, "kind": kind.value, "comment_id": comment_id, "payload": "{}"},
    )


async def confirm_from_echo(session: AsyncSession, metadata: str | None, mid: str) -> bool:
    """An echo of our own message arrived: the outbox row it names was delivered (reconciles crashes)."""
    outbox_id = parse_outbox_metadata(metadata)
    if outbox_id is None:
        return False
    now = utcnow()
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == outbox_id, OutboxMessage.status.in_(["pending", "sending", "sent"]))
        .values(
            status=OutboxStatus.SENT.value,
            meta_id=mid,
            confirmed_at=now,
            lease_until=None,
            sent_at=func.coalesce(OutboxMessage.sent_at, now),
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class OutboxSettings:
    max_attempts: int = 8
    lease: timedelta = timedelta(seconds=60)  # longer than the Graph timeout: a live sender still holds it
    echo_grace: timedelta = timedelta(seconds=30)  # then, with no echo, the row is tried again
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0
    batch: int = 64
    concurrency: int = 32
    poll_s: float = 1.0
    probe_paused_s: float = 60.0


class OutboxNotifier:
    """Wakes senders when rows are queued (the SQL rows are the truth; this only saves a poll)."""

    def __init__(self, redis: Redis, key: str) -> None:
        self.redis = redis
        self.key = key

    async def wake(self) -> None:
        with contextlib.suppress(Exception):  # a lost wake-up only costs one poll interval
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.lpush(self.key, 1)
                pipe.ltrim(self.key, 0, 0)
                await pipe.execute()

    async def wait(self, timeout_s: float) -> None:
        with contextlib.suppress(Exception):
            await self.redis.blpop([self.key], timeout=timeout_s)


def backoff_delay(attempt: int, settings: OutboxSettings, rng: random.Random) -> float:
    """Exponential back-off with jitter (half to full), capped."""
    base = min(settings.backoff_cap_s, settings.backoff_base_s * 2 ** max(attempt - 1, 0))
    return base * (0.5 + rng.random() / 2)


class OutboxSender:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        graph: GraphClient,
        limiter: SendRateLimiter,
        notifier: OutboxNotifier,
        settings: OutboxSettings | None = None,
    ) -> None:
        self.sessions = sessions
        self.graph = graph
        self.limiter = limiter
        self.notifier = notifier
        self.settings = settings or OutboxSettings()
        self._stopping = asyncio.Event()
        self.finished = asyncio.Event()
        self._rng = random.Random()
        self._last_probe = 0.0
        self.sent = 0

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    handled = await self.run_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("outbox: a round failed; trying again")
                    handled = 0
                if not handled and not self._stopping.is_set():
                    await self.notifier.wait(self.settings.poll_s)
        finally:
            self.finished.set()

    async def run_once(self) -> int:
        """Claim due rows and send them; the number handled."""
        await self._probe_paused_pages()
        rows = await self._claim()
        if not rows:
            return 0
        semaphore = asyncio.Semaphore(self.settings.concurrency)

        async def one(row: OutboxMessage) -> None:
            async with semaphore:
                await self._deliver(row)

        await asyncio.gather(*(one(r) for r in rows))
        return len(rows)

    async def _claim(self) -> list[OutboxMessage]:
        now = utcnow()
        async with self.sessions() as session, session.begin():
            paused = select(PageState.page_id).where(PageState.sending_paused.is_(True))
            # Rows a dead sender held past its lease and the echo grace, never confirmed: try again.
            await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.status == OutboxStatus.SENDING.value,
                    OutboxMessage.lease_until < now - self.settings.echo_grace,
                )
                .values(status=OutboxStatus.PENDING.value, lease_until=None)
            )
            busy = {
                (r.page_id, r.psid or r.comment_id)
                for r in (
                    await session.execute(
                        select(OutboxMessage.page_id, OutboxMessage.psid, OutboxMessage.comment_id).where(
                            OutboxMessage.status == OutboxStatus.SENDING.value
                        )
                    )
                ).all()
            }
            due = (
                (
                    await session.execute(
                        select(OutboxMessage)
                        .where(
                            OutboxMessage.status == OutboxStatus.PENDING.value,
                            OutboxMessage.next_attempt_at <= now,
                            OutboxMessage.page_id.not_in(paused),
                        )
                        .order_by(OutboxMessage.id)
                        .limit(self.settings.batch * 4)
                    )
                )
                .scalars()
                .all()
            )
            chosen: list[OutboxMessage] = []
            for row in due:
                recipient = (row.page_id, row.psid or row.comment_id)
                if recipient in busy:
                    continue  # one message at a time per recipient keeps the order
                busy.add(recipient)
                claimed = await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row.id, OutboxMessage.status == OutboxStatus.PENDING.value)
                    .values(
                        status=OutboxStatus.SENDING.value,
                        lease_until=now + self.settings.lease,
                        attempts=OutboxMessage.attempts + 1,
                    )
                )
                if claimed.rowcount:  # type: ignore[attr-defined]
                    row.attempts += 1
                    chosen.append(row)
                if len(chosen) >= self.settings.batch:
                    break
        return chosen

    async def _decide(self, row: OutboxMessage) -> SendDecision:
        now = utcnow()
        if row.kind == OutboxKind.MESSAGE.value:
            async with self.sessions() as session:
                last_user_at = (
                    await session.execute(
                        select(Conversation.last_user_at).where(
                            Conversation.page_id == row.page_id, Conversation.psid == row.psid
                        )
                    )
                ).scalar_one_or_none()
            return decide_message(now, last_user_at, Author(row.author))
        if row.kind == OutboxKind.PRIVATE_REPLY.value:
            return decide_private_reply(now, row.comment_created_at, already_sent=False)
        return SendDecision(allowed=True)

    async def _deliver(self, row: OutboxMessage) -> None:
        decision = await self._decide(row)
        if not decision.allowed:
            await self._record_refusal(row, decision)
            return
        payload = json.loads(row.payload)
        try:
            result = await self._send(row, payload, decision)
        except GraphError as error:
            await self._record_error(row, error)
            return
        await self._record_sent(row, result, decision, payload)

    async def _send(self, row: OutboxMessage, payload: dict[str, Any], decision: SendDecision) -> SendResult | str:
        assert row.id is not None
        kind = OutboxKind(row.kind)
        if kind is OutboxKind.MESSAGE:
            assert row.psid is not None and decision.messaging_type is not None
            await self.limiter.acquire(row.page_id, row.psid)
            return await self.graph.send_message(
                row.page_id,
                {"id": row.psid},
                with_metadata(payload, outbox_metadata(row.id)),
                messaging_type=decision.messaging_type,
                tag=decision.tag,
            )
        assert row.comment_id is not None
        if kind is OutboxKind.PRIVATE_REPLY:
            await self.limiter.acquire(row.page_id, row.comment_id)
            return await self.graph.send_private_reply(
                row.page_id, row.comment_id, with_metadata(payload, outbox_metadata(row.id))
            )
        if kind is OutboxKind.COMMENT_REPLY:
            return await self.graph.reply_to_comment(row.page_id, row.comment_id, payload["text"])
        await self.graph.set_comment_hidden(row.page_id, row.comment_id, kind is OutboxKind.HIDE_COMMENT)
        return ""

    async def _record_sent(
        self, row: OutboxMessage, result: SendResult | str, decision: SendDecision, payload: dict[str, Any]
    ) -> None:
        now = utcnow()
        meta_id = result.message_id if isinstance(result, SendResult) else (result or None)
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id)
                .values(
                    status=OutboxStatus.SENT.value,
                    meta_id=meta_id,
                    sent_at=now,
                    lease_until=None,
                    messaging_type=decision.messaging_type,
                    tag=decision.tag,
                    error_class=None,
                    error_code=None,
                    error_subcode=None,
                    error_message=None,
                    fbtrace_id=None,
                )
            )
            psid = row.psid or (result.recipient_id if isinstance(result, SendResult) else None)
            if row.kind in (OutboxKind.MESSAGE.value, OutboxKind.PRIVATE_REPLY.value) and psid:
                await self._upsert_message(session, row, psid, meta_id, payload, status="sent", error=None, at=now)
            if row.kind == OutboxKind.PRIVATE_REPLY.value:
                await session.execute(
                    update(CommentLog)
                    .where(CommentLog.comment_id == row.comment_id)
                    .values(reply_status="sent", reply_error=None)
                )
        self.sent += 1

    async def _upsert_message(
        self,
        session: AsyncSession,
        row: OutboxMessage,
        psid: str,
        mid: str | None,
        payload: dict[str, Any],
        *,
        status: str,
        error: str | None,
        at: datetime,
    ) -> None:
        conversation = await fetch_or_create_conversation(session, page_id=row.page_id, psid=psid, channel="facebook")
        existing = None
        if mid:
            existing = (await session.execute(select(Message).where(Message.mid == mid))).scalar_one_or_none()
        if existing is None:
            existing = (await session.execute(select(Message).where(Message.outbox_id == row.id))).scalar_one_or_none()
        if existing is None:
            # The echo has not arrived yet (it usually comes a moment later and finds this row by mid).
            existing = Message(
                conversation_id=conversation.id,
                mid=mid,
                direction="out",
                author=row.author,  # type: ignore[arg-type]
                kind="text" if "text" in payload else "attachment",
                text=payload.get("text"),
                payload=json.dumps(payload, ensure_ascii=False),
                sent_at=at,
                created_at=at,
            )
        existing.status, existing.error, existing.outbox_id = status, error, row.id
        if mid:
            existing.mid = mid
        session.add(existing)

    async def _record_refusal(self, row: OutboxMessage, decision: SendDecision) -> None:
        log.info("outbox %s refused: %s", row.id, decision.reason)
        await self._finish_failed(row, OutboxStatus.REFUSED, decision.refusal or "refused", decision.reason, None)

    async def _record_error(self, row: OutboxMessage, error: GraphError) -> None:
        if error.error_class is GraphErrorClass.BAD_TOKEN:
            await self._pause_page(row, error)
            return
        if error.error_class.retryable and row.attempts < self.settings.max_attempts:
            delay = backoff_delay(row.attempts, self.settings, self._rng)
            log.warning("outbox %s: %s; retry %d in %.1fs", row.id, error, row.attempts, delay)
            async with self.sessions() as session, session.begin():
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row.id)
                    .values(
                        status=OutboxStatus.PENDING.value,
                        lease_until=None,
                        next_attempt_at=utcnow() + timedelta(seconds=delay),
                        **_error_columns(error),
                    )
                )
            return
        log.error("outbox %s failed: %s", row.id, error)
        await self._finish_failed(row, OutboxStatus.FAILED, error.error_class.value, error.message, error)

    async def _finish_failed(
        self, row: OutboxMessage, status: OutboxStatus, error_class: str, reason: str, error: GraphError | None
    ) -> None:
        now = utcnow()
        columns = _error_columns(error) if error else {"error_class": error_class[:20], "error_message": reason}
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id)
                .values(status=status.value, lease_until=None, **columns)
            )
            words = f"{status.value}: {reason}"
            if row.kind == OutboxKind.MESSAGE.value and row.psid:
                await self._upsert_message(
                    session, row, row.psid, None, json.loads(row.payload), status=status.value, error=reason, at=now
                )
            if row.comment_id and row.kind == OutboxKind.PRIVATE_REPLY.value:
                await session.execute(
                    update(CommentLog)
                    .where(CommentLog.comment_id == row.comment_id)
                    .values(reply_status=status.value, reply_error=words)
                )

    async def _pause_page(self, row: OutboxMessage, error: GraphError) -> None:
        log.error(
            "ALERT: Page %s token rejected by Meta (%s); its sending is paused until the token works",
            row.page_id,
            error,
        )
        now = utcnow()
        async with self.sessions() as session, session.begin():
            state = await session.get(PageState, row.page_id) or PageState(page_id=row.page_id)
            state.sending_paused, state.paused_reason, state.paused_at = True, str(error), now
            session.add(state)
            # The message is not failed and not sent: it waits for the Page to come back.
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id)
                .values(
                    status=OutboxStatus.PENDING.value,
                    lease_until=None,
                    attempts=OutboxMessage.attempts - 1,
                    **_error_columns(error),
                )
            )

    async def _probe_paused_pages(self) -> None:
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._last_probe < self.settings.probe_paused_s:
            return
        self._last_probe = loop_time
        async with self.sessions() as session:
            paused = (
                (await session.execute(select(PageState.page_id).where(PageState.sending_paused.is_(True))))
                .scalars()
                .all()
            )
        for page_id in paused:
            try:
                await self.graph.fetch_page_info(page_id)
            except GraphError as error:
                log.error("ALERT: Page %s still paused: %s", page_id, error)
                continue
            await resume_page(self.sessions, page_id)
            log.warning("Page %s token works again; sending resumed", page_id)


async def resume_page(sessions: async_sessionmaker[AsyncSession], page_id: str) -> bool:
    async with sessions() as session, session.begin():
        result = await session.execute(
            update(PageState)
            .where(PageState.page_id == page_id, PageState.sending_paused.is_(True))
            .values(sending_paused=False, paused_reason=None, paused_at=None)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _error_columns(error: GraphError | None) -> dict[str, Any]:
    if error is None:
        return {}
    return {
        "error_class": error.error_class.value,
        "error_code": error.code,
        "error_subcode": error.subcode,
        "error_message": error.message,
        "fbtrace_id": error.fbtrace_id,
    }
