"""The outbox's sending side: `OutboxSender` delivers the rows `bot.outbound.outbox` queued.

- It claims due rows (oldest first, one at a time per recipient so messages keep their order), checks
  Meta's rules (`bot.outbound.messaging_rules`) and the shared rate limit, calls the Graph adapter and
  records the outcome: sent (with Meta's id), retry later with back-off and jitter, failed or refused
  with the reason in words, on the row, on the conversation's message and on the comment log.
- A crash between Meta's answer and our record leaves a row in `sending`; Meta's echo carries our
  metadata (`plusone:outbox:<id>`) and confirms it (`bot.outbound.outbox.confirm_from_echo`). Only a row
  whose lease and echo grace both ran out without an echo is tried again.
- A refusal about the whole Page pauses it (`PageState`: its rows wait, nothing is given up, the try does
  not count) and alerts the merchant (log, inbox banner, `/healthz`): a throttle (4, 17, 32, 613,
  80000–80014) until Meta's `estimated_time_to_regain_access`, else a back-off that grows with each
  throttle in a row, after which one send probes; a restriction (10/1893063, 368) or a missing permission
  (10, 200–299) until a probe send `probe_restricted_s` later or the merchant resumes it; a rejected token
  until `fetch_page_info` works again. None fails a message or posts a public fallback per shopper.
- 10900 ("Activity already replied to") means the comment's private reply got there (a send whose answer
  was lost): the row is `sent`, with no Meta id and `error_class` `already_sent` saying why.
- A private reply is never given up on a passing fault while its comment is inside Meta's 7 days.
- Meta's usage headers (`SendResult.usage`, `GraphError.usage`) set the Page's share of the send rate
  (`bot.outbound.rate_limit.usage_factor`).
- Time is `self.clock` (`bot.runtime.clock.utcnow`; a test moves it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.outbound.graph import GraphClient, GraphError, GraphErrorClass, SendResult
from bot.outbound.instagram import decide_instagram_reply
from bot.outbound.messaging_rules import (
    PRIVATE_REPLY_WINDOW,
    Author,
    SendDecision,
    decide_message,
    decide_order_update,
    decide_private_reply,
)
from bot.outbound.outbox import (
    INSTAGRAM,
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
    channel: str | None = None  # "instagram": a reply to an Instagram comment (bot.outbound.instagram)


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
    probe_paused_s: float = 60.0  # how often a Page paused for its token is checked
    human_agent: bool = False  # the app has Meta's Human Agent permission (settings.human_agent_permission)
    throttle_backoff_s: float = 60.0  # a throttle without Meta's estimate: 60 s, doubling per throttle in a row
    throttle_backoff_cap_s: float = 900.0
    probe_restricted_s: float = 900.0  # a restricted Page or a missing permission: one send probes this later


def throttle_pause_s(regain_access_s: float | None, streak: int, settings: OutboxSettings) -> float:
    """How long a throttled Page waits: Meta's estimate when it gives one, else a back-off that doubles
    with each throttle in a row (`streak`, from 1), capped. Pure."""
    if regain_access_s is not None and regain_access_s > 0:
        return regain_access_s
    return min(settings.throttle_backoff_cap_s, settings.throttle_backoff_s * 2 ** max(streak - 1, 0))


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
        self.clock: Callable[[], datetime] = utcnow  # a test moves it; every decision here reads it

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
                    .values(lease_until=self.clock() + self.settings.lease)
                )

    async def _claim(self, token: str) -> list[OutboxInfo]:
        table = OutboxMessage.__table__
        conversations = Conversation.__table__
        now = self.clock()
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
            in_flight = sending.all()
            busy = {(r.page_id, r.psid or r.comment_id) for r in in_flight}
            paused = select(PageState.page_id).where(
                PageState.sending_paused.is_(True),
                or_(PageState.paused_until.is_(None), PageState.paused_until > now),
            )
            # A pause whose time has passed lets one row through, the probe: if Meta takes it, the Page
            # resumes (`_resume_after_probe`); if not, it is paused again. No probe while one is in flight.
            expired = set(
                (
                    await session.execute(
                        select(PageState.page_id).where(
                            PageState.sending_paused.is_(True), PageState.paused_until <= now
                        )
                    )
                )
                .scalars()
                .all()
            )
            probing = expired - {r.page_id for r in in_flight}
            due = await session.execute(
                select(table, conversations.c.last_user_at, conversations.c.channel.label("thread_channel"))
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
                if row["page_id"] in expired:
                    if row["page_id"] not in probing:
                        continue  # its probe is taken (or in flight): the rest wait for its answer
                    probing.discard(row["page_id"])
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
                        # A message's channel is its thread's: Instagram Direct has no utility templates.
                        channel=row["channel"] or (INSTAGRAM if row["thread_channel"] == INSTAGRAM else None),
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
        now = self.clock()
        if row.kind == OutboxKind.MESSAGE.value and row.purpose == OutboxPurpose.ORDER_UPDATE.value:
            template = json.loads(row.template) if row.template else {}
            name, language = template.get("name"), template.get("language")
            found = None
            outside = decide_message(now, row.last_user_at, Author.BOT).refusal is not None
            if name and outside and row.channel != INSTAGRAM:
                # Only asked outside the window: inside it the free-form message goes, whatever Meta says.
                async with self.sessions() as session:
                    found = await approved_template(session, row.page_id, name, language)
            decision = decide_order_update(
                now, row.last_user_at, name, found is not None, instagram=row.channel == INSTAGRAM
            )
            if decision.use_template and found is not None:
                values = template.get("params") or {}
                params = [str(values.get(name, "")) for name in json.loads(found.fields)]
                chosen = {"name": found.name, "language": found.language, "params": params}
                shown = {"text": render_body(found.body, params), "template": chosen}
                row = replace(row, template=json.dumps(chosen), payload=json.dumps(shown, ensure_ascii=False))
            return decision, row
        if row.kind == OutboxKind.PRIVATE_REPLY.value and row.channel == INSTAGRAM:
            return await decide_instagram_reply(
                self.sessions, row.comment_id, row.comment_created_at, row.purpose, now
            ), row
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
            if error.usage is not None:
                await self._note_usage(row.page_id, error.usage.percent)
            if error.error_class is GraphErrorClass.ALREADY_SENT:
                # 10900: the comment already has its private reply, ours (an answer lost on the way back):
                # delivered, with no Meta id to show for it.
                log.warning("outbox %s: Meta says it was already delivered (%s)", row.id, error)
                return Outcome(row, OutboxStatus.SENT, decision=decision, result=None, error=error)
            if error.error_class.pauses_page:
                return Outcome(row, OutboxStatus.PENDING, error=error, pause_page=True)
            if error.error_class.retryable and (row.attempts < self.settings.max_attempts or self._still_worth_it(row)):
                delay = backoff_delay(row.attempts, self.settings, self._rng)
                log.warning("outbox %s: %s; retry %d in %.1fs", row.id, error, row.attempts, delay)
                return Outcome(row, OutboxStatus.PENDING, error=error, retry_in_s=delay)
            log.error("outbox %s failed: %s", row.id, error)
            return Outcome(row, OutboxStatus.FAILED, error=error)
        if isinstance(result, SendResult) and result.usage is not None:
            await self._note_usage(row.page_id, result.usage.percent)
        return Outcome(row, OutboxStatus.SENT, decision=decision, result=result)

    def _still_worth_it(self, row: OutboxInfo) -> bool:
        """A private reply is the shopper's only answer to their comment: past `max_attempts` it is still
        tried while the comment is inside Meta's 7 days (after them Meta would refuse it anyway)."""
        return (
            row.kind == OutboxKind.PRIVATE_REPLY.value
            and row.comment_created_at is not None
            and self.clock() - row.comment_created_at < PRIVATE_REPLY_WINDOW
        )

    async def _note_usage(self, page_id: str, percent: float) -> None:
        try:
            await self.limiter.note_usage(page_id, percent)
        except Exception:  # the pace is an optimisation: a Redis hiccup must not lose the send's outcome
            log.exception("outbox: could not record Meta's usage for Page %s", page_id)

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
            if row.channel == INSTAGRAM:
                await self.limiter.acquire_instagram_private_reply(row.page_id)  # about 750 an hour
            await self.limiter.acquire(row.page_id, row.comment_id)
            return await self.graph.send_private_reply(
                row.page_id, row.comment_id, with_metadata(payload, outbox_metadata(row.id))
            )
        if kind is OutboxKind.COMMENT_REPLY and row.channel == INSTAGRAM:
            return await self.graph.reply_to_instagram_comment(row.page_id, row.comment_id, payload["text"])
        if kind is OutboxKind.COMMENT_REPLY:
            return await self.graph.reply_to_comment(row.page_id, row.comment_id, payload["text"])
        await self.graph.set_comment_hidden(row.page_id, row.comment_id, kind is OutboxKind.HIDE_COMMENT)
        return ""

    async def _record(self, outcomes: list[Outcome], token: str) -> None:
        now = self.clock()
        sent = [o for o in outcomes if o.status is OutboxStatus.SENT]
        async with self.sessions() as session, session.begin():
            if sent:
                await self._record_sent(session, sent, token, now)
                await self._resume_after_probe(session, {o.row.page_id for o in sent}, now)
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
        already = [o for o in sent if o.error is not None]
        if already:
            # Say why there is no Meta id: Meta answered 10900, the reply was already there.
            await session.execute(
                table.update()
                .where(table.c.id.in_([o.row.id for o in already]))
                .values(**_error_columns(already[0].error))
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
        instagram = {o.row.id for o in sent if o.row.channel == INSTAGRAM}
        conversation_ids = await fetch_or_create_conversations(
            session, {(pages[oid], psid) for oid, psid in threads.items() if oid not in instagram}
        )
        conversation_ids |= await fetch_or_create_conversations(
            session, {(pages[oid], psid) for oid, psid in threads.items() if oid in instagram}, channel=INSTAGRAM
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
            await self._pause_page(session, row.page_id, outcome.error, now)
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
                    session,
                    key=fallback["key"],
                    page_id=row.page_id,
                    comment_id=row.comment_id,
                    text=fallback["text"],
                    channel=row.channel,
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

    async def _pause_page(self, session: AsyncSession, page_id: str, error: GraphError, now: datetime) -> None:
        """Pause the Page for what Meta said about it; once per refusal, however many rows of a batch heard it."""
        state = await session.get(PageState, page_id, with_for_update=True) or PageState(page_id=page_id)
        kind, was_paused = error.error_class, bool(state.sending_paused)
        if (
            state.sending_paused
            and state.pause_kind == kind.value
            and (state.paused_until is None or state.paused_until > now)
        ):
            return  # another row of this batch (or another sender) already paused it for this
        until: datetime | None = None
        if kind is GraphErrorClass.THROTTLED:
            state.throttle_streak = (state.throttle_streak or 0) + 1
            regain = error.usage.regain_access_s if error.usage is not None else None
            until = now + timedelta(seconds=throttle_pause_s(regain, state.throttle_streak, self.settings))
            log.error(
                "ALERT: Page %s throttled by Meta (%s); its sending waits until %s (throttle %d in a row)",
                page_id,
                error,
                until.isoformat(timespec="seconds"),
                state.throttle_streak,
            )
        elif kind is GraphErrorClass.BAD_TOKEN:
            log.error(
                "ALERT: Page %s token rejected by Meta (%s); its sending is paused until it works", page_id, error
            )
        else:
            until = now + timedelta(seconds=self.settings.probe_restricted_s)
            log.error(
                "ALERT: Page %s refused by Meta (%s); its sending is paused, one send probes at %s",
                page_id,
                error,
                until.isoformat(timespec="seconds"),
            )
        state.sending_paused, state.pause_kind, state.paused_until = True, kind.value, until
        state.paused_reason = str(error)
        state.paused_at = state.paused_at if was_paused and state.paused_at else now  # paused since
        session.add(state)
        await session.flush()

    async def _resume_after_probe(self, session: AsyncSession, pages: set[str], now: datetime) -> None:
        """Meta took a send of these Pages: a pause whose time had passed is over, a throttle streak ends."""
        await session.execute(
            update(PageState)
            .where(PageState.page_id.in_(pages), PageState.sending_paused.is_(True), PageState.paused_until <= now)
            .values(
                sending_paused=False,
                pause_kind=None,
                paused_until=None,
                paused_reason=None,
                paused_at=None,
                throttle_streak=0,
            )
        )
        await session.execute(
            update(PageState)
            .where(PageState.page_id.in_(pages), PageState.sending_paused.is_(False), PageState.throttle_streak > 0)
            .values(throttle_streak=0)
        )

    async def _probe_paused_pages(self) -> None:
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._last_probe < self.settings.probe_paused_s:
            return
        self._last_probe = loop_time
        async with self.sessions() as session:
            paused = (
                (
                    await session.execute(
                        # Only a token pause is probed this way: a restricted or throttled Page still answers
                        # a read, so only a send can tell (the probe row of `_claim`).
                        select(PageState.page_id).where(
                            PageState.sending_paused.is_(True), PageState.paused_until.is_(None)
                        )
                    )
                )
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
            .values(
                sending_paused=False,
                paused_reason=None,
                paused_at=None,
                pause_kind=None,
                paused_until=None,
                throttle_streak=0,
            )
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
