"""What the outbox sender needs to know of Instagram, beside Facebook's rules: a private reply to a comment on
an Instagram live may only go while that live is live (docs/meta-platform.md, "Instagram").

The decision itself is pure (`bot.outbound.messaging_rules.decide_instagram_private_reply`); this reads the
live's end from SQL: the live video row of the comment's media (the merchant stops it in the inbox or the
admin API, `POST /api/live-videos/{id}/stop`). No row: nothing known, and Meta's own refusal is final.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.outbound.messaging_rules import SendDecision, decide_instagram_private_reply
from bot.outbound.outbox import OutboxPurpose
from bot.store.tables import CommentLog, LiveVideo


async def decide_instagram_reply(
    sessions: async_sessionmaker[AsyncSession],
    comment_id: str | None,
    comment_created_at: datetime | None,
    purpose: str | None,
    now: datetime,
) -> SendDecision:
    """May the private reply to this Instagram comment go now?"""
    on_live = purpose == OutboxPurpose.INSTAGRAM_LIVE.value
    ended_at = None
    if on_live and comment_id is not None:
        async with sessions() as session:
            ended_at = (
                await session.execute(
                    select(LiveVideo.ended_at)
                    .join(CommentLog, CommentLog.post_id == LiveVideo.video_id)
                    .where(CommentLog.comment_id == comment_id)
                    .limit(1)
                )
            ).scalar_one_or_none()
    return decide_instagram_private_reply(
        now, comment_created_at, already_sent=False, on_live=on_live, live_ended_at=ended_at
    )
