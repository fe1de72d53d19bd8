"""Shoppers' names and pictures from Meta's User Profile API, filled in beside the request path.

A shopper who only messages arrives with a PSID and nothing else, so the inbox showed "Shopper …0004".
`UserProfileFiller` looks for Messenger conversations whose shopper has written and whose profile was never
fetched, or was fetched more than `PROFILE_MAX_AGE` ago, asks `GET /{psid}?fields=first_name,last_name,
profile_pic`, and keeps the name, the picture's URL (https only: the inbox shows it as an <img> as Meta
gave it) and when. Meta answers only for people who wrote to the Page; a refusal is kept as "fetched" so
it is not asked again for a week; a passing fault is tried again after `retry_after`. Nothing waits on it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.outbound.graph import GraphClient, GraphError
from bot.runtime.clock import utcnow
from bot.runtime.loops import Loop
from bot.store.tables import Conversation

log = logging.getLogger(__name__)

PROFILE_MAX_AGE = timedelta(days=7)
NAME_MAX = 200  # Conversation.name's column
PICTURE_MAX = 2000


def profile_name(answer: dict[str, Any]) -> str | None:
    """The name to show: first and last name as Meta gives them, else `name`. Pure."""
    parts = [str(answer.get(k) or "").strip() for k in ("first_name", "last_name")]
    name = " ".join(p for p in parts if p) or str(answer.get("name") or "").strip()
    return name[:NAME_MAX] or None


def safe_picture(url: Any) -> str | None:
    """The picture's URL if it is one an <img> may load as is (https, no spaces or quotes), else None. Pure."""
    if not isinstance(url, str) or not url.startswith("https://") or len(url) > PICTURE_MAX:
        return None
    if any(c.isspace() or c in "\"'<>\\" for c in url):
        return None
    return url


class UserProfileFiller(Loop):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        graph: GraphClient,
        *,
        poll_s: float = 5.0,
        batch: int = 20,
        retry_after: timedelta = timedelta(minutes=10),
    ) -> None:
        super().__init__("plusone-user-profiles")
        self.sessions = sessions
        self.graph = graph
        self.poll_s = poll_s
        self.batch = batch
        self.retry_after = retry_after
        self._not_before: dict[int, datetime] = {}  # conversation id -> when to try again after a passing fault

    async def _due(self, now: datetime) -> list[Conversation]:
        stale = now - PROFILE_MAX_AGE
        stmt = (
            select(Conversation)
            .where(
                Conversation.channel == "facebook",
                Conversation.last_user_at.is_not(None),  # type: ignore[union-attr]
                or_(Conversation.profile_fetched_at.is_(None), Conversation.profile_fetched_at < stale),  # type: ignore[union-attr, operator]
            )
            .order_by(Conversation.id)
            .limit(self.batch + len(self._not_before))
        )
        async with self.sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        due = [r for r in rows if self.graph.has_page(r.page_id) and self._not_before.get(r.id or 0, now) <= now]
        return due[: self.batch]

    async def fill_once(self, now: datetime | None = None) -> int:
        """Fetch the profiles that are due; how many conversations were brought up to date."""
        now = now or utcnow()
        done = 0
        for conversation in await self._due(now):
            cid = conversation.id or 0
            values: dict[str, Any] = {"profile_fetched_at": now}
            try:
                answer = await self.graph.fetch_user_profile(conversation.page_id, conversation.psid)
            except GraphError as error:
                if error.error_class.retryable or error.error_class.pauses_page:
                    self._not_before[cid] = now + self.retry_after
                    log.info("user profile of %s on Page %s not fetched yet: %s", cid, conversation.page_id, error)
                    continue
                # Meta will not give this one (no profile, a person who never wrote): ask again in a week.
                log.info("no user profile for conversation %s: %s", cid, error)
            else:
                name, picture = profile_name(answer), safe_picture(answer.get("profile_pic"))
                if name:
                    values["name"] = name
                values["profile_pic"] = picture
            self._not_before.pop(cid, None)
            async with self.sessions() as session, session.begin():
                await session.execute(update(Conversation).where(Conversation.id == cid).values(**values))
            done += 1
        return done

    async def loop(self) -> None:
        while not self.stopping:
            await self.fill_once()
            await self.sleep(self.poll_s)
