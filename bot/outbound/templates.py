"""Utility message templates on each Page: made from the shop file's `templates:` section, their review followed.

After the 24-hour window an order update reaches the shopper only as a utility template Meta approved
(docs/meta-platform.md; the order tags were retired on 27 April 2026). So:

- `TemplateKeeper` (a `Loop`) makes, on every Page we hold a token for, each template and language of the
  shop file (rows `bot.store.message_templates.apply_templates` wrote) not made yet
  (`POST /{page}/message_templates`), and polls `GET /{page}/message_templates` for the review of those
  still pending.
- `record_status` records Meta's `message_template_status_update` webhook (the worker calls it), so an
  approval counts at once rather than at the next poll.
- `approved_template` is what the outbox sender asks before it sends an order update outside the window.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.outbound.graph import GraphClient, GraphError, TemplateInfo
from bot.runtime.clock import utcnow
from bot.runtime.loops import Loop
from bot.store.message_templates import TemplateStatus
from bot.store.tables import MessageTemplate

log = logging.getLogger(__name__)


# Meta's review words; paused, disabled or deleted templates cannot be sent, like rejected ones.
_META_STATUS = {
    "APPROVED": TemplateStatus.APPROVED,
    "PENDING": TemplateStatus.PENDING,
    "IN_APPEAL": TemplateStatus.PENDING,
    "REJECTED": TemplateStatus.REJECTED,
    "PAUSED": TemplateStatus.REJECTED,
    "DISABLED": TemplateStatus.REJECTED,
    "DELETED": TemplateStatus.REJECTED,
    "PENDING_DELETION": TemplateStatus.REJECTED,
}


def template_status(meta_word: str) -> TemplateStatus | None:
    """Meta's status or webhook event (APPROVED, REJECTED...) → ours; None for a word we do not know. Pure."""
    return _META_STATUS.get(meta_word.strip().upper())


async def approved_template(
    session: AsyncSession, page_id: str, name: str, language: str | None
) -> MessageTemplate | None:
    """The Page's approved template `name` in `language` (any language when None), or None."""
    query = select(MessageTemplate).where(
        MessageTemplate.page_id == page_id,
        MessageTemplate.name == name,
        MessageTemplate.status == TemplateStatus.APPROVED.value,
    )
    if language:
        query = query.where(MessageTemplate.language == language)
    return (await session.execute(query.order_by(MessageTemplate.id).limit(1))).scalars().first()


async def record_status(
    session: AsyncSession,
    *,
    page_id: str,
    meta_id: str | None,
    name: str | None,
    language: str | None,
    status: TemplateStatus,
    reason: str | None,
    now: datetime,
) -> bool:
    """Record Meta's review of one template of the Page (found by Meta's id, else name and language)."""
    row = None
    if meta_id:
        query = select(MessageTemplate).where(MessageTemplate.page_id == page_id, MessageTemplate.meta_id == meta_id)
        row = (await session.execute(query)).scalars().first()
    if row is None and name and language:
        query = select(MessageTemplate).where(
            MessageTemplate.page_id == page_id, MessageTemplate.name == name, MessageTemplate.language == language
        )
        row = (await session.execute(query)).scalars().first()
    if row is None:
        return False
    row.status, row.last_checked_at = status.value, now
    row.reason = reason if status is TemplateStatus.REJECTED else None
    row.meta_id = row.meta_id or meta_id
    session.add(row)
    await session.flush()
    return True


async def templates_of(session: AsyncSession, page_id: str) -> list[MessageTemplate]:
    query = select(MessageTemplate).where(MessageTemplate.page_id == page_id).order_by(MessageTemplate.id)
    return list((await session.execute(query)).scalars().all())


async def sync_page(sessions: async_sessionmaker[AsyncSession], graph: GraphClient, page_id: str) -> None:
    """Make the Page's templates not made yet, then ask Meta for the review of those still pending."""
    async with sessions() as session:
        rows = await templates_of(session, page_id)
    for row in rows:
        if row.meta_id is not None:
            continue
        fields = json.loads(row.fields)
        examples = [f"<{field}>" for field in fields]
        created = await graph.create_message_template(page_id, row.name, row.language, row.body, examples)
        status = template_status(created.status) or TemplateStatus.PENDING
        async with sessions() as session, session.begin():
            await session.execute(
                update(MessageTemplate)
                .where(MessageTemplate.id == row.id)
                .values(meta_id=created.id, status=status.value, last_checked_at=utcnow())
            )
        log.info("template %s/%s made on Page %s (%s)", row.name, row.language, page_id, status.value)
    async with sessions() as session:
        pending = [t for t in await templates_of(session, page_id) if t.status == TemplateStatus.PENDING.value]
    if pending:
        await poll_page(sessions, graph, page_id)


async def poll_page(sessions: async_sessionmaker[AsyncSession], graph: GraphClient, page_id: str) -> int:
    """Record Meta's current review of every template of the Page we know; how many were found."""
    listed: list[TemplateInfo] = await graph.fetch_message_templates(page_id)
    found = 0
    now = utcnow()
    async with sessions() as session, session.begin():
        for info in listed:
            status = template_status(info.status)
            if status is None:
                continue
            found += await record_status(
                session,
                page_id=page_id,
                meta_id=info.id,
                name=info.name,
                language=info.language,
                status=status,
                reason=info.reason,
                now=now,
            )
    return found


class TemplateKeeper(Loop):
    """Every `interval_s`: make the shop file's templates on each Page and follow their review (polling)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], graph: GraphClient, interval_s: float = 300.0
    ) -> None:
        super().__init__("plusone-templates")
        self.sessions = sessions
        self.graph = graph
        self.interval_s = interval_s
        self.rounds = 0  # rounds done: tests wait for the first before they add templates

    async def run_once(self) -> None:
        for page_id in sorted(self.graph.page_tokens):
            try:
                await sync_page(self.sessions, self.graph, page_id)
            except GraphError as error:
                log.error("could not keep the message templates of Page %s: %s", page_id, error)

    async def loop(self) -> None:
        while not self.stopping:
            await self.run_once()
            self.rounds += 1
            await self.sleep(self.interval_s)


async def approved_template_names(session: AsyncSession) -> set[str]:
    """The names of the utility templates Meta approved on any of the shop's Pages (what a journey may send)."""
    rows = await session.execute(
        select(MessageTemplate.name).where(MessageTemplate.status == TemplateStatus.APPROVED.value).distinct()
    )
    return set(rows.scalars())
