"""Blocked buyers, per Page: block, unblock, and which of a batch's shoppers are blocked.

The comment handler asks once per batch of comments (`blocked_among`, one indexed query for the whole
batch), before any stock claim is planned, so a live's flood costs one round trip per batch, not one per
comment. `now` is the caller's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.tables import BlockedBuyer, Conversation
from carts.sql import dialect_insert

MAX_REASON = 300
Shopper = tuple[str, str]  # (page id, psid)


class BlockReasonError(ValueError):
    """A reason that cannot be kept: its msgid (the English words) and values, for the inbox and the API."""

    def __init__(self, msgid: str, **params: object) -> None:
        super().__init__(msgid.format(**params))
        self.msgid, self.params = msgid, params


def clean_reason(text: str | None) -> str | None:
    """A block's reason as kept: spaces collapsed, None when empty; BlockReasonError when too long."""
    reason = " ".join((text or "").split())
    if len(reason) > MAX_REASON:
        raise BlockReasonError("Reason: at most {max} characters.", max=MAX_REASON)
    return reason or None


async def block_buyer(
    session: AsyncSession, page_id: str, psid: str, reason: str | None, by: str, now: datetime
) -> bool:
    """Block a shopper on a Page; False when they were blocked already (the first reason stays)."""
    insert = dialect_insert(session)
    values = {"page_id": page_id, "psid": psid, "reason": reason or None, "blocked_by": by, "blocked_at": now}
    stmt = insert(BlockedBuyer.__table__).values(values).on_conflict_do_nothing(index_elements=["page_id", "psid"])
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def unblock_buyer(session: AsyncSession, page_id: str, psid: str) -> bool:
    """Unblock a shopper; False when they were not blocked."""
    result = await session.execute(
        delete(BlockedBuyer).where(BlockedBuyer.page_id == page_id, BlockedBuyer.psid == psid)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def blocked_among(session: AsyncSession, shoppers: Iterable[Shopper]) -> set[Shopper]:
    """Which of these shoppers are blocked, in one query."""
    wanted = sorted(set(shoppers))
    if not wanted:
        return set()
    found: set[Shopper] = set()
    for start in range(0, len(wanted), 500):  # bounded IN lists
        rows = await session.execute(
            select(BlockedBuyer.page_id, BlockedBuyer.psid).where(
                tuple_(BlockedBuyer.page_id, BlockedBuyer.psid).in_(wanted[start : start + 500])
            )
        )
        found.update((page, psid) for page, psid in rows.all())
    return found


async def fetch_block(session: AsyncSession, page_id: str, psid: str) -> BlockedBuyer | None:
    return await session.get(BlockedBuyer, (page_id, psid))


@dataclass(frozen=True)
class BlockedRow:
    page_id: str
    psid: str
    name: str | None
    conversation_id: int | None
    reason: str | None
    blocked_by: str
    blocked_at: datetime


async def list_blocked(session: AsyncSession, pages: frozenset[str]) -> list[BlockedRow]:
    """The blocked buyers of these Pages, latest first, with their chat when they have one."""
    if not pages:
        return []
    rows = await session.execute(
        select(BlockedBuyer, Conversation.id, Conversation.name)
        .outerjoin(
            Conversation, (Conversation.page_id == BlockedBuyer.page_id) & (Conversation.psid == BlockedBuyer.psid)
        )
        .where(BlockedBuyer.page_id.in_(sorted(pages)))
        .order_by(BlockedBuyer.blocked_at.desc(), BlockedBuyer.psid)
    )
    return [
        BlockedRow(b.page_id, b.psid, name, cid, b.reason, b.blocked_by, b.blocked_at) for b, cid, name in rows.all()
    ]
