"""Messages not delivered: the outgoing messages Meta refused or our sending rules held back (outbox rows
`failed` or `refused`), as the owner's list shows them (the shopper, when, why in words), and a retry
where retrying can work.

A retry puts the same row back in the queue (`pending`, due now, its error cleared): the same idempotency
key, so it can never go twice, and the conversation's copy of it shows "sending" again.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.outbound.outbox import OutboxKind, OutboxStatus
from bot.store.tables import CommentLog, Conversation, Message, OutboxMessage

LIST_LIMIT = 200
PREVIEW_MAX = 300
WINDOW = timedelta(hours=24)
# Meta's passing faults: the same message may well go a moment later.
_PASSING = frozenset({"retry_later", "throttled"})
# The Page's own state (token, permission, Meta's restriction): it goes once the owner has settled it;
# until then the Page's sending stays paused and the row waits.
_PAGE_STATE = frozenset({"bad_token", "permission", "page_restricted"})
# The messaging window was closed: a message may go again once the shopper has written in the last 24 hours.
_WINDOW = frozenset({"no_window", "outside_window", "no_human_agent", "outside_human_window", "no_channel"})


def retry_can_work(kind: str, reason: str, created_at: datetime, last_user_at: datetime | None, now: datetime) -> bool:
    """Whether sending this row again could get it through now (never for what Meta will refuse again:
    a shopper who cannot receive, a request Meta found wrong, a comment's one private reply used up)."""
    if reason in _PASSING or reason in _PAGE_STATE:
        return True
    if reason in _WINDOW and kind == OutboxKind.MESSAGE.value and last_user_at is not None:
        wrote = _aware(last_user_at)
        return wrote > _aware(created_at) and now - wrote < WINDOW
    return False


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _preview(payload: str) -> str:
    try:
        message = json.loads(payload)
    except ValueError:
        return ""
    if not isinstance(message, dict):
        return ""
    text = message.get("text") or (message.get("attachment") or {}).get("payload", {}).get("text") or ""
    return str(text)[:PREVIEW_MAX]


@dataclass(frozen=True)
class Undelivered:
    id: int
    page_id: str
    kind: str  # message | private_reply | comment_reply | ...
    status: str  # failed | refused
    reason: str  # GraphErrorClass or RefusalCode value: bot.replies.statuses.send_reason puts it in words
    error_code: int | None
    meta_message: str  # Meta's (or the rules') own words, for a support request
    created_at: datetime
    preview: str
    shopper: str
    conversation_id: int | None
    can_retry: bool


async def fetch_undelivered(
    session: AsyncSession, pages: Collection[str], now: datetime, limit: int = LIST_LIMIT
) -> list[Undelivered]:
    """The newest `limit` messages of these Pages that did not get through."""
    rows = await session.execute(
        select(OutboxMessage, Conversation.id, Conversation.name, Conversation.last_user_at)
        .outerjoin(
            Conversation,
            (Conversation.page_id == OutboxMessage.page_id) & (Conversation.psid == OutboxMessage.psid),
        )
        .where(
            OutboxMessage.page_id.in_(sorted(pages)),
            OutboxMessage.status.in_((OutboxStatus.FAILED.value, OutboxStatus.REFUSED.value)),
        )
        .order_by(OutboxMessage.id.desc())  # type: ignore[union-attr]
        .limit(limit)
    )
    found = []
    for row, conversation_id, name, last_user_at in rows.all():
        reason = row.error_class or ""
        found.append(
            Undelivered(
                row.id or 0,
                row.page_id,
                row.kind,
                row.status,
                reason,
                row.error_code,
                row.error_message or "",
                row.created_at,
                _preview(row.payload),
                name or "",
                conversation_id,
                retry_can_work(row.kind, reason, row.created_at, last_user_at, now),
            )
        )
    return found


async def retry_undelivered(session: AsyncSession, pages: Collection[str], outbox_id: int, now: datetime) -> str:
    """Queue the row again: "queued", or why not: "not_found" (none, or another Page's), "not_retryable"."""
    found = next(iter(await _one(session, pages, outbox_id, now)), None)
    if found is None:
        return "not_found"
    if not found.can_retry:
        return "not_retryable"
    table = OutboxMessage.__table__
    result = await session.execute(
        table.update()
        .where(table.c.id == outbox_id, table.c.status == found.status)  # not twice: a second click finds it pending
        .values(
            status=OutboxStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            lease_until=None,
            claim_token=None,
            error_class=None,
            error_code=None,
            error_subcode=None,
            error_message=None,
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return "not_found"
    await session.execute(update(Message).where(Message.outbox_id == outbox_id).values(status="pending", error=None))
    await session.execute(
        update(CommentLog)
        .where(CommentLog.reply_outbox_id == outbox_id)  # type: ignore[arg-type]
        .values(reply_status="queued", reply_error=None)
    )
    return "queued"


async def _one(session: AsyncSession, pages: Collection[str], outbox_id: int, now: datetime) -> list[Undelivered]:
    row = await session.get(OutboxMessage, outbox_id)
    if row is None or row.page_id not in pages or row.status not in (OutboxStatus.FAILED, OutboxStatus.REFUSED):
        return []
    last_user_at = (
        await session.execute(
            select(Conversation.last_user_at).where(Conversation.page_id == row.page_id, Conversation.psid == row.psid)
        )
    ).scalar()
    reason = row.error_class or ""
    return [
        Undelivered(
            outbox_id,
            row.page_id,
            row.kind,
            row.status,
            reason,
            row.error_code,
            row.error_message or "",
            row.created_at,
            "",
            "",
            None,
            retry_can_work(row.kind, reason, row.created_at, last_user_at, now),
        )
    ]
