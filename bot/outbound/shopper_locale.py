"""The language each message to a shopper is written in, and noting the signs of it as they arrive.

The rule is `bot.replies.i18n`'s (their choice > Meta's locale > the script they write > the shop's language);
the locale found is kept on the shopper's conversation (`Conversation.locale`, `locale_source`).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.replies.i18n import LocaleSource, pick_locale, shopper_locale
from bot.store.conversations import fetch_locale_candidates
from bot.store.tables import Conversation


async def locales_of(session: AsyncSession, shoppers: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The locale each (page id, psid) reads: their own when known, else the shop's language, else English."""
    own, shop = await fetch_locale_candidates(session, shoppers)
    return {shopper: pick_locale(own.get(shopper), shop) for shopper in shoppers}


async def locale_of(session: AsyncSession, page_id: str, psid: str) -> str:
    """The locale one shopper reads."""
    return (await locales_of(session, {(page_id, psid)}))[(page_id, psid)]


def note_locale(conversation: Conversation, found: str | None, source: LocaleSource) -> bool:
    """Keep `found` as the shopper's locale unless a stronger source already gave one; True if it changed."""
    kept = shopper_locale(conversation.locale, conversation.locale_source, found, source)
    if kept is None:
        return False
    conversation.locale, conversation.locale_source = kept
    return True
