"""Conversations: one per Page and shopper. Shared by the recorders (inbound) and the outbox (outbound)."""

from __future__ import annotations

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime.clock import utcnow
from bot.store.tables import Conversation
from carts.payments import fetch_shop_payments
from carts.sql import dialect_insert

# Outgoing messages we send carry this metadata prefix, so their echoes are known to be the bot's.
BOT_METADATA_PREFIX = "plusone:"


async def fetch_or_create_conversation(session: AsyncSession, *, page_id: str, psid: str, channel: str) -> Conversation:
    table = Conversation.__table__
    insert = dialect_insert(session)
    # INSERT .. ON CONFLICT DO NOTHING: two workers meeting a new shopper at once both succeed.
    await session.execute(
        insert(table)
        .values(page_id=page_id, psid=psid, channel=channel, created_at=utcnow(), unread=0)
        .on_conflict_do_nothing(index_elements=["page_id", "psid"])
    )
    result = await session.execute(
        select(Conversation).where(Conversation.page_id == page_id, Conversation.psid == psid)
    )
    return result.scalar_one()


async def fetch_or_create_conversations(
    session: AsyncSession, threads: set[tuple[str, str]], channel: str = "facebook"
) -> dict[tuple[str, str], int]:
    """Conversation ids for many (page id, psid) pairs at once, creating the missing ones."""
    if not threads:
        return {}
    table = Conversation.__table__
    insert = dialect_insert(session)
    now = utcnow()
    await session.execute(
        insert(table).on_conflict_do_nothing(index_elements=["page_id", "psid"]),
        [{"page_id": page, "psid": psid, "channel": channel, "created_at": now, "unread": 0} for page, psid in threads],
    )
    rows = await session.execute(
        select(table.c.id, table.c.page_id, table.c.psid).where(tuple_(table.c.page_id, table.c.psid).in_(threads))
    )
    return {(r.page_id, r.psid): r.id for r in rows}


async def fetch_locale_candidates(
    session: AsyncSession, shoppers: set[tuple[str, str]]
) -> tuple[dict[tuple[str, str], str | None], str | None]:
    """Each (page id, psid)'s own locale as kept (None: not known), and the shop's language.

    The caller picks (`bot.replies.i18n.pick_locale(own, shop)`): the rule lives with the texts."""
    shop = (await fetch_shop_payments(session)).language
    own: dict[tuple[str, str], str | None] = dict.fromkeys(shoppers)
    if shoppers:
        rows = await session.execute(
            select(Conversation.page_id, Conversation.psid, Conversation.locale).where(
                tuple_(Conversation.page_id, Conversation.psid).in_(shoppers)
            )
        )
        own.update({(r.page_id, r.psid): r.locale for r in rows})
    return own, shop
