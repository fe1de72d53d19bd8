"""The outbox's enqueue side: everything we send to Meta is first a SQL row, queued here.

- `enqueue_*` write the row in the caller's transaction (the effect that caused it), keyed for
  idempotency, so a replayed event never queues a message twice. Whether a message may go (Meta's window
  and tags) is decided when it is sent, by `bot.outbound.sender.OutboxSender`.
- `OutboxNotifier` (a handler calls it through `ctx.wake_outbox()`) tells the senders that rows are
  waiting, once the transaction that queued them committed (the rows are the truth; a wake-up only
  saves a poll).
- `confirm_from_echo` / `confirm_echoes`: Meta's echo of our own message carries our metadata
  (`plusone:outbox:<id>`) and marks its row sent, which reconciles a sender that crashed between Meta's
  answer and its record.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import bindparam, func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.outbound.messaging_rules import Author
from bot.runtime.clock import utcnow
from bot.store.conversations import BOT_METADATA_PREFIX
from bot.store.tables import CommentLog, OutboxMessage
from carts.sql import dialect_insert


class OutboxKind(StrEnum):
    MESSAGE = "message"
    PRIVATE_REPLY = "private_reply"
    COMMENT_REPLY = "comment_reply"
    HIDE_COMMENT = "hide_comment"
    UNHIDE_COMMENT = "unhide_comment"


class OutboxPurpose(StrEnum):
    """Why a message goes: an order update may use an approved utility template outside the window."""

    ORDER_UPDATE = "order_update"
    # A private reply to a comment on an Instagram live: it may only go while that live is live.
    INSTAGRAM_LIVE = "instagram_live"


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
    number = metadata[len(prefix) :] if metadata and metadata.startswith(prefix) else ""
    # Not "³" (forged metadata: int() refuses it), and no more digits than a SQL BIGINT id can have: a
    # longer number is no outbox row, and looking it up would overflow the database driver.
    if number.isascii() and number.isdigit() and len(number) <= 18:
        return int(number)
    return None


async def _insert(session: AsyncSession, values: dict[str, Any]) -> OutboxMessage | None:
    """Insert unless the idempotency key exists; the new row, or None when it was already queued."""
    insert = dialect_insert(session)
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


async def enqueue_messages(
    session: AsyncSession,
    *,
    key: str,
    page_id: str,
    psid: str,
    messages: list[dict[str, Any]],
    author: Author = Author.BOT,
) -> None:
    """Queue several messages to a shopper in order (a long text split in parts), keyed `key:0`, `key:1`…"""
    for part, message in enumerate(messages):
        await enqueue_message(session, key=f"{key}:{part}", page_id=page_id, psid=psid, message=message, author=author)


async def enqueue_order_update(
    session: AsyncSession,
    *,
    key: str,
    page_id: str,
    psid: str,
    message: dict[str, Any],
    template: str,
    params: Mapping[str, object],
    language: str | None = None,
) -> OutboxMessage | None:
    """Queue news of an order to its shopper: `message` inside the 24-hour window, else the template.

    `template` is a name of the shop file's `templates:` section (order_confirmed, payment_received,
    shipped, hold_expiring, order_expiring); `params` are the order's values by field name
    (`config.templates_file.ORDER_FIELDS`: order_number, total, carrier, tracking_number...), which fill
    the `{{n}}` the shop file's `fields` name. `language` picks one of its languages (None: any approved
    one). Outside the window with no approved template the row ends `refused` with the reason
    `no_channel`, shown in the inbox, and nothing is sent. None if `key` was already queued.
    """
    return await _insert(
        session,
        {
            "idempotency_key": key,
            "page_id": page_id,
            "kind": OutboxKind.MESSAGE.value,
            "psid": psid,
            "author": Author.BOT.value,
            "payload": json.dumps(message, ensure_ascii=False),
            "purpose": OutboxPurpose.ORDER_UPDATE.value,
            "template": json.dumps(
                {"name": template, "language": language, "params": {k: str(v) for k, v in params.items()}},
                ensure_ascii=False,
            ),
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
    delay_s: float = 0.0,
    public_fallback: tuple[str, str] | None = None,
) -> OutboxMessage | None:
    """Queue the one private reply a comment may get; None if it already has one queued or sent."""
    request = PrivateReplyRequest(page_id, comment_id, psid, comment_created_at, message, public_fallback)
    created = await enqueue_private_replies(session, [request], delay_s=delay_s)
    if comment_id not in created:
        return None
    await session.execute(update(CommentLog).where(CommentLog.comment_id == comment_id).values(reply_status="queued"))
    return await session.get(OutboxMessage, created[comment_id])


@dataclass(frozen=True)
class PrivateReplyRequest:
    """One private reply to queue in bulk (see `enqueue_private_replies`)."""

    page_id: str
    comment_id: str
    psid: str | None
    comment_created_at: datetime | None
    message: dict[str, Any]
    public_fallback: tuple[str, str] | None = None
    channel: str | None = None  # "instagram": Instagram's own limits and public reply edge; else Facebook
    on_live: bool = False  # an Instagram live's comment: the reply may only go while the live is live


INSTAGRAM = "instagram"  # an outbox row's `channel` for a reply to an Instagram comment


async def enqueue_private_replies(
    session: AsyncSession, requests: list[PrivateReplyRequest], *, delay_s: float = 0.0
) -> dict[str, int]:
    """Queue many private replies with one statement per couple of hundred; comment id -> new outbox row id.

    `delay_s` holds them back briefly so that the shoppers' next comments can join them (one message, not a
    flood). A comment that already has its reply queued or sent gets none (it is left out of the answer);
    the caller records on the comment log which reply answers each comment.
    """
    if not requests:
        return {}
    insert = dialect_insert(session)
    now = utcnow()
    due = now + timedelta(seconds=delay_s)
    created: dict[str, int] = {}
    for start in range(0, len(requests), 500):
        rows = [
            {
                "status": OutboxStatus.PENDING.value,
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": due,
                "idempotency_key": f"private_reply:{r.comment_id}",
                "page_id": r.page_id,
                "kind": OutboxKind.PRIVATE_REPLY.value,
                "comment_id": r.comment_id,
                "psid": r.psid,
                "comment_created_at": r.comment_created_at,
                "payload": json.dumps(r.message, ensure_ascii=False),
                "on_failure": json.dumps({"public_reply": {"key": r.public_fallback[0], "text": r.public_fallback[1]}})
                if r.public_fallback
                else None,
                "channel": r.channel if r.channel == INSTAGRAM else None,
                "purpose": OutboxPurpose.INSTAGRAM_LIVE.value if r.on_live else None,
            }
            for r in requests[start : start + 500]
        ]
        table = OutboxMessage.__table__
        stmt = insert(table).on_conflict_do_nothing(index_elements=["idempotency_key"])
        result = await session.execute(stmt.returning(table.c.id, table.c.comment_id), rows)
        created.update({comment_id: row_id for row_id, comment_id in result.all()})
    return created


async def enqueue_comment_reply(
    session: AsyncSession, *, key: str, page_id: str, comment_id: str, text: str, channel: str | None = None
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
            "channel": channel if channel == INSTAGRAM else None,
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
    return outbox_id is not None and await confirm_echoes(session, [(outbox_id, mid)]) > 0


async def confirm_echoes(session: AsyncSession, echoes: list[tuple[int, str]]) -> int:
    """Mark the outbox rows these (outbox id, Meta's message id) echoes name as sent; how many rows changed.

    One executemany for any number of echoes (a live's batch of them, `bot.inbound.recorders.OwnEchoes`).
    """
    if not echoes:
        return 0
    now = utcnow()
    table = OutboxMessage.__table__
    result = await session.execute(
        table.update()
        # (no IN list: an expanding IN cannot go in an executemany)
        .where(table.c.id == bindparam("p_id"), or_(*(table.c.status == s for s in ("pending", "sending", "sent"))))
        .values(
            status=OutboxStatus.SENT.value,
            meta_id=bindparam("p_mid"),
            confirmed_at=now,
            lease_until=None,
            sent_at=func.coalesce(table.c.sent_at, now),
        ),
        [{"p_id": outbox_id, "p_mid": mid} for outbox_id, mid in echoes],
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


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
