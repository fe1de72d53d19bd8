"""The outbox's sending side: `OutboxSender` delivers the rows `bot.outbound.outbox` queued.

- It claims due rows (oldest first, one at a time per recipient so messages keep their order), checks
  Meta's rules (`bot.outbound.messaging_rules`) and the shared rate limit, calls the Graph adapter and
  records the outcome: sent (with Meta's id), retry later with back-off and jitter, failed or refused
  with the reason in words, on the row, on the conversation's message and on the comment log.
- A crash between Meta's answer and our record leaves a row in `sending`; Meta's echo carries our
  metadata (`plusone:outbox:<id>`) and confirms it (`bot.outbound.outbox.confirm_from_echo`). Only a row
  whose lease and echo grace both ran out without an echo is tried again.
- A Page whose token Meta rejects is paused (its rows wait, nothing is reported as sent) and an alert is
  logged; the sender probes it and resumes when the token works again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.outbound.graph import GraphClient, GraphError, GraphErrorClass, SendResult
from bot.outbound.messaging_rules import (
    Author,
    SendDecision,
    decide_message,
    decide_order_update,
    decide_private_reply,
)
from bot.outbound.outbox import (
    OutboxKind,
    OutboxNotifier,
    OutboxPurpose,
    OutboxStatus,
    enqueue_comment_reply,
    outbox_metadata,
)
from bot.outbound.rate_limit import SendRateLimiter
from bot.outbound.templates import approved_template
from bot.replies.render import with_metadata
from bot.runtime.clock import utcnow
from bot.runtime.loops import Loop, jittered
from bot.store.conversations import fetch_or_create_conversation, fetch_or_create_conversations
from bot.store.tables import CommentLog, Conversation, Message, OutboxMessage, PageState
from config.templates_file import render_body

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboxInfo:
    """A claimed outbox row, loaded once (plain data: no ORM state that a later flush could write back)."""

    id: int
    page_id: str
    kind: str
    psid: str | None
    comment_id: str | None
    comment_created_at: datetime | None
    author: str
    payload: str
    attempts: int  # including the attempt now being made
    on_failure: str | None
    last_user_at: datetime | None  # the shopper's last own action (opens the 24-hour window)
    purpose: str | None = None  # "order_update": may go as a utility template after the window
    template: str | None = None  # JSON {"name", "language", "params"} of that template


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
    human_agent: bool = False  # the app has Meta's Human Agent permission (settings.human_agent_permission)


def backoff_delay(attempt: int, settings: OutboxSettings, rng: random.Random) -> float:
    """Exponential back-off with jitter (half to full), capped."""
    return jittered(min(settings.backoff_cap_s, settings.backoff_base_s * 2 ** max(attempt - 1, 0)), rng)


@dataclass
class Outcome:
    """What happened to one claimed row; all outcomes of a batch are recorded in one transaction."""

    row: OutboxInfo
    status: OutboxStatus
    decision: SendDecision | None = None
    result: SendResult | str | None = None
    error: GraphError | None = None
    retry_in_s: float | None = None
    pause_page: bool = False


class OutboxSender(Loop):
    """The loop that delivers due outbox rows, a batch per round; woken by `OutboxNotifier`, else it polls."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        graph: GraphClient,
        limiter: SendRateLimiter,
        notifier: OutboxNotifier,
        settings: OutboxSettings | None = None,
    ) -> None:
        super().__init__("plusone-outbox")
        self.sessions = sessions
        self.graph = graph
        self.limiter = limiter
        self.notifier = notifier
        self.settings = settings or OutboxSettings()
        self._rng = random.Random()
        self._last_probe = 0.0
        self.sent = 0

    async def loop(self) -> None:
        while not self.stopping:
            try:
                handled = await self.run_once()
            except Exception:
                log.exception("%s: a round failed; its rows are retried once their lease runs out", self.name)
                handled = 0
            if not handled and not self.stopping:
                await self.notifier.wait(self.settings.poll_s)

    async def run_once(self) -> int:
        """Claim due rows, send them, record what happened; the number handled."""
        await self._probe_paused_pages()
        token = uuid.uuid4().hex
        rows = await self._claim(token)
        if not rows:
            return 0
        # Keep the batch's leases fresh while it is worked on, however long the rate limiter makes it
        # wait: only a sender that really stopped loses its rows to another one.
        heartbeat = asyncio.create_task(self._heartbeat(token))
        semaphore = asyncio.Semaphore(self.settings.concurrency)

        async def one(row: OutboxInfo) -> Outcome:
            async with semaphore:
                return await self._deliver(row)

        try:
            outcomes = await asyncio.gather(*(one(r) for r in rows))
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        await self._record(outcomes, token)
        return len(rows)

    async def _heartbeat(self, token: str) -> None:
        table = OutboxMessage.__table__
        interval = self.settings.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            async with self.sessions() as session, session.begin():
                await session.execute(
                    table.update()
                    .where(table.c.claim_token == token, table.c.status == OutboxStatus.SENDING.value)
                    .values(lease_until=utcnow() + self.settings.lease)
                )

    async def _claim(self, token: str) -> list[OutboxInfo]:
        table = OutboxMessage.__table__
        conversations = Conversation.__table__
        now = utcnow()
        async with self.sessions() as session, session.begin():
            # Rows a dead sender held past its lease and the echo grace, never confirmed: try again.
            await session.execute(
                table.update()
                .where(
                    table.c.status == OutboxStatus.SENDING.value, table.c.lease_until < now - self.settings.echo_grace
                )
                .values(status=OutboxStatus.PENDING.value, lease_until=None, claim_token=None)
            )
            sending = await session.execute(
                select(table.c.page_id, table.c.psid, table.c.comment_id).where(
                    table.c.status == OutboxStatus.SENDING.value
                )
            )
            busy = {(r.page_id, r.psid or r.comment_id) for r in sending.all()}
            paused = select(PageState.page_id).where(PageState.sending_paused.is_(True))
            due = await session.execute(
                select(table, conversations.c.last_user_at)
                .outerjoin(
                    conversations, (conversations.c.page_id == table.c.page_id) & (conversations.c.psid == table.c.psid)
                )
                .where(
                    table.c.status == OutboxStatus.PENDING.value,
                    table.c.next_attempt_at <= now,
                    table.c.page_id.not_in(paused),
                )
                .order_by(table.c.id)
                .limit(self.settings.batch * 4)
            )
            chosen: list[OutboxInfo] = []
            for row in due.mappings().all():
                recipient = (row["page_id"], row["psid"] or row["comment_id"])
                if recipient in busy:
                    continue  # one message at a time per recipient keeps the order
                busy.add(recipient)
                chosen.append(
                    OutboxInfo(
                        id=row["id"],
                        page_id=row["page_id"],
                        kind=row["kind"],
                        psid=row["psid"],
                        comment_id=row["comment_id"],
                        comment_created_at=row["comment_created_at"],
                        author=row["author"],
                        payload=row["payload"],
                        attempts=row["attempts"] + 1,
                        on_failure=row["on_failure"],
                        last_user_at=row["last_user_at"],
                        purpose=row["purpose"],
                        template=row["template"],
                    )
                )
                if len(chosen) >= self.settings.batch:
                    break
            if not chosen:
                return []
            claimed = await session.execute(
                table.update()
                .where(table.c.id.in_([r.id for r in chosen]), table.c.status == OutboxStatus.PENDING.value)
                .values(
                    status=OutboxStatus.SENDING.value,
                    lease_until=now + self.settings.lease,
                    attempts=table.c.attempts + 1,
                    claim_token=token,
                )
                .returning(table.c.id)
            )
            # Another sender may have taken some of them between our read and this update.
            ours = set(claimed.scalars().all())
        return [r for r in chosen if r.id in ours]

    async def _decide(self, row: OutboxInfo) -> tuple[SendDecision, OutboxInfo]:
        """Whether and how the row may go; for a utility template, the row as the shopper will read it."""
        now = utcnow()
        if row.kind == OutboxKind.MESSAGE.value and row.purpose == OutboxPurpose.ORDER_UPDATE.value:
            template = json.loads(row.template) if row.template else {}
            name, language = template.get("name"), template.get("language")
            found = None
            if name and decide_message(now, row.last_user_at, Author.BOT).refusal is not None:
                # Only asked outside the window: inside it the free-form message goes, whatever Meta says.
                async with self.sessions() as session:
                    found = await approved_template(session, row.page_id, name, language)
            decision = decide_order_update(now, row.last_user_at, name, found is not None)
            if decision.use_template and found is not None:
                values = template.get("params") or {}
                params = [str(values.get(name, "")) for name in json.loads(found.fields)]
                chosen = {"name": found.name, "language": found.language, "params": params}
                shown = {"text": render_body(found.body, params), "template": chosen}
                row = replace(row, template=json.dumps(chosen), payload=json.dumps(shown, ensure_ascii=False))
            return decision, row
        return self._decide_plain(row, now), row

    def _decide_plain(self, row: OutboxInfo, now: datetime) -> SendDecision:
        if row.kind == OutboxKind.MESSAGE.value:
            return decide_message(now, row.last_user_at, Author(row.author), human_agent=self.settings.human_agent)
        if row.kind == OutboxKind.PRIVATE_REPLY.value:
            return decide_private_reply(now, row.comment_created_at, already_sent=False)
        return SendDecision(allowed=True)

    async def _deliver(self, row: OutboxInfo) -> Outcome:
        decision, row = await self._decide(row)
        if not decision.allowed:
            log.info("outbox %s refused: %s", row.id, decision.reason)
            return Outcome(row, OutboxStatus.REFUSED, decision=decision)
        try:
            result = await self._send(row, json.loads(row.payload), decision)
        except GraphError as error:
            if error.error_class is GraphErrorClass.BAD_TOKEN:
                return Outcome(row, OutboxStatus.PENDING, error=error, pause_page=True)
            if error.error_class.retryable and row.attempts < self.settings.max_attempts:
                delay = backoff_delay(row.attempts, self.settings, self._rng)
                log.warning("outbox %s: %s; retry %d in %.1fs", row.id, error, row.attempts, delay)
                return Outcome(row, OutboxStatus.PENDING, error=error, retry_in_s=delay)
            log.error("outbox %s failed: %s", row.id, error)
            return Outcome(row, OutboxStatus.FAILED, error=error)
        return Outcome(row, OutboxStatus.SENT, decision=decision, result=result)

    async def _send(self, row: OutboxInfo, payload: dict[str, Any], decision: SendDecision) -> SendResult | str:
        kind = OutboxKind(row.kind)
        if kind is OutboxKind.MESSAGE:
            assert row.psid is not None and decision.messaging_type is not None
            await self.limiter.acquire(row.page_id, row.psid)
            if decision.use_template:
                assert row.template is not None
                chosen = json.loads(row.template)
                return await self.graph.send_template(
                    row.page_id,
                    row.psid,
                    chosen["name"],
                    chosen["language"],
                    chosen["params"],
                    metadata=outbox_metadata(row.id),
                )
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

    async def _record(self, outcomes: list[Outcome], token: str) -> None:
        now = utcnow()
        sent = [o for o in outcomes if o.status is OutboxStatus.SENT]
        async with self.sessions() as session, session.begin():
            if sent:
                await self._record_sent(session, sent, token, now)
            for outcome in outcomes:
                if outcome.status is not OutboxStatus.SENT:
                    await self._record_one(session, outcome, token, now)
        self.sent += len(sent)

    async def _record_sent(self, session: AsyncSession, sent: list[Outcome], token: str, now: datetime) -> None:
        """Record a batch of successful sends with a handful of statements, whatever its size."""
        table = OutboxMessage.__table__
        # Only the claim that sent a row may record it; an echo that confirmed it first keeps its mid.
        await session.execute(
            table.update()
            .where(table.c.id == bindparam("p_id"), table.c.claim_token == bindparam("p_token"))
            .values(
                status=OutboxStatus.SENT.value,
                meta_id=func.coalesce(table.c.meta_id, bindparam("p_meta")),
                sent_at=func.coalesce(table.c.sent_at, now),
                messaging_type=bindparam("p_type"),
                tag=bindparam("p_tag"),
                lease_until=None,
                claim_token=None,
                error_class=None,
                error_code=None,
                error_subcode=None,
                error_message=None,
                fbtrace_id=None,
            ),
            [
                {
                    "p_id": o.row.id,
                    "p_token": token,
                    "p_meta": _meta_id(o.result),
                    "p_type": o.decision.messaging_type if o.decision else None,
                    "p_tag": o.decision.tag if o.decision else None,
                }
                for o in sent
            ],
        )
        replies = [o.row.comment_id for o in sent if o.row.kind == OutboxKind.PRIVATE_REPLY.value]
        if replies:
            await session.execute(
                update(CommentLog)
                .where(CommentLog.comment_id.in_(replies))
                .values(reply_status="sent", reply_error=None)
            )
        # The conversation keeps what we sent, with its author (an agent's message echoes with our app id too).
        threads = {
            o.row.id: o.row.psid or (o.result.recipient_id if isinstance(o.result, SendResult) else None)
            for o in sent
            if o.row.kind in (OutboxKind.MESSAGE.value, OutboxKind.PRIVATE_REPLY.value)
        }
        threads = {k: v for k, v in threads.items() if v}
        if not threads:
            return
        pages = {o.row.id: o.row.page_id for o in sent}
        conversation_ids = await fetch_or_create_conversations(
            session, {(pages[oid], psid) for oid, psid in threads.items()}
        )
        mids = [m for o in sent if (m := _meta_id(o.result))]
        existing = (
            (
                await session.execute(
                    select(Message).where(or_(Message.outbox_id.in_(list(threads)), Message.mid.in_(mids)))
                )
            )
            .scalars()
            .all()
        )
        by_outbox = {m.outbox_id: m for m in existing if m.outbox_id is not None}
        by_mid = {m.mid: m for m in existing if m.mid}
        for outcome in sent:
            row = outcome.row
            if row.id not in threads:
                continue
            mid = _meta_id(outcome.result)
            message = by_outbox.get(row.id) or (by_mid.get(mid) if mid else None)
            if message is None:
                payload = json.loads(row.payload)
                message = Message(
                    conversation_id=conversation_ids[(row.page_id, threads[row.id])],
                    mid=mid,
                    direction="out",
                    author=row.author,
                    kind="text" if "text" in payload else "attachment",
                    text=payload.get("text"),
                    payload=json.dumps(payload, ensure_ascii=False),
                    sent_at=now,
                    created_at=now,
                )
            message.status, message.error, message.outbox_id = "sent", None, row.id
            message.mid = message.mid or mid
            session.add(message)
        await session.flush()

    async def _record_one(self, session: AsyncSession, outcome: Outcome, token: str, now: datetime) -> None:
        row, table = outcome.row, OutboxMessage.__table__
        # Only the claim that sent it may record it (a confirming echo may have been faster: keep it).
        mine = (table.c.id == row.id) & (table.c.claim_token == token)
        done = {"lease_until": None, "claim_token": None}
        payload = json.loads(row.payload)
        if outcome.pause_page:
            assert outcome.error is not None
            log.error(
                "ALERT: Page %s token rejected by Meta (%s); its sending is paused until the token works",
                row.page_id,
                outcome.error,
            )
            state = await session.get(PageState, row.page_id) or PageState(page_id=row.page_id)
            state.sending_paused, state.paused_reason, state.paused_at = True, str(outcome.error), now
            session.add(state)
            # Not failed and not sent: it waits for the Page to come back, and this try does not count.
            await session.execute(
                table.update()
                .where(mine)
                .values(
                    status=OutboxStatus.PENDING.value,
                    attempts=table.c.attempts - 1,
                    **_error_columns(outcome.error),
                    **done,
                )
            )
            return
        if outcome.status is OutboxStatus.PENDING:
            retry_at = now + timedelta(seconds=outcome.retry_in_s or 0)
            await session.execute(
                table.update()
                .where(mine)
                .values(
                    status=OutboxStatus.PENDING.value, next_attempt_at=retry_at, **_error_columns(outcome.error), **done
                )
            )
            return
        # failed or refused: final, with the reason where the merchant looks.
        if outcome.error is not None:
            reason, columns = outcome.error.message, _error_columns(outcome.error)
        else:
            assert outcome.decision is not None
            reason = outcome.decision.reason
            columns = {"error_class": outcome.decision.refusal or "refused", "error_message": reason}
        await session.execute(table.update().where(mine).values(status=outcome.status.value, **columns, **done))
        if row.kind == OutboxKind.MESSAGE.value and row.psid:
            await self._upsert_message(
                session, row, row.psid, None, payload, status=outcome.status.value, error=reason, at=now
            )
        if row.comment_id and row.on_failure and outcome.status is OutboxStatus.FAILED:
            fallback = json.loads(row.on_failure).get("public_reply")
            if fallback:
                # The shopper could not be reached privately: point them to Messenger under their comment.
                await enqueue_comment_reply(
                    session, key=fallback["key"], page_id=row.page_id, comment_id=row.comment_id, text=fallback["text"]
                )
        if row.comment_id and row.kind == OutboxKind.PRIVATE_REPLY.value:
            await session.execute(
                update(CommentLog)
                .where(CommentLog.comment_id == row.comment_id)
                .values(reply_status=outcome.status.value, reply_error=f"{outcome.status.value}: {reason}")
            )

    async def _upsert_message(
        self,
        session: AsyncSession,
        row: OutboxInfo,
        psid: str,
        mid: str | None,
        payload: dict[str, Any],
        *,
        status: str,
        error: str | None,
        at: datetime,
    ) -> None:
        conversation = await fetch_or_create_conversation(session, page_id=row.page_id, psid=psid, channel="facebook")
        clauses = [Message.outbox_id == row.id] + ([Message.mid == mid] if mid else [])
        existing = (await session.execute(select(Message).where(or_(*clauses)))).scalars().first()
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
        existing.mid = existing.mid or mid
        session.add(existing)
        await session.flush()

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


def _meta_id(result: SendResult | str | None) -> str | None:
    if isinstance(result, SendResult):
        return result.message_id
    return result or None


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
