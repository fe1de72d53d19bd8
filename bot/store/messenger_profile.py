"""The shop file's `messenger_profile:` section in the database, for the profile keeper in any process."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.tables import MessengerProfileRow
from config.messenger_profile_file import MessengerProfileConfig, profile_from_json, profile_to_json


async def save_messenger_profile(session: AsyncSession, config: MessengerProfileConfig | None, now: datetime) -> bool:
    """Keep the section (None: the shop file has none, so PlusOne's defaults apply); True when it changed."""
    row = await session.get(MessengerProfileRow, 1)
    if config is None:
        if row is None:
            return False
        await session.delete(row)
        return True
    text = profile_to_json(config)
    if row is not None and row.config == text:
        return False
    if row is None:
        session.add(MessengerProfileRow(id=1, config=text, updated_at=now))
    else:
        row.config, row.updated_at = text, now
    return True


async def fetch_messenger_profile(session: AsyncSession) -> MessengerProfileConfig | None:
    row = await session.get(MessengerProfileRow, 1)
    return profile_from_json(row.config) if row is not None else None
