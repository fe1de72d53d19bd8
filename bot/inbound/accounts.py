"""Instagram accounts resolved to their Pages: what an `object: "instagram"` delivery's events are about.

Instagram webhooks name the shop's Instagram professional account (`entry.id`), not a Page. With
Instagram Messaging through the Messenger Platform (Facebook Login), the linked Page's token sends for
the account (`POST /{page-id}/messages`), so an Instagram event is handled as its Page's, with
`channel` INSTAGRAM for everything a person sees and `account_id` the Instagram account's id
(docs/meta-platform.md, "Instagram"). An account the shop does not know is logged and acknowledged as an
`IgnoredEvent`: it never reaches a handler, so it can never pause a Page that does not exist.
"""

from __future__ import annotations

import dataclasses
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbound.events import Channel, Event, IgnoredEvent, TestPingEvent
from bot.store.tables import InstagramAccount

log = logging.getLogger("plusone.inbound")

UNKNOWN_ACCOUNT = "unknown Instagram account"


def resolve_accounts(events: list[Event], pages_of: dict[str, str]) -> list[Event]:
    """Each Instagram event as its Page's (`pages_of`: account id -> Page id); pure. Others unchanged."""
    resolved: list[Event] = []
    for event in events:
        if event.channel is not Channel.INSTAGRAM or event.account_id is not None or not event.page_id:
            resolved.append(event)
            continue
        if isinstance(event, TestPingEvent | IgnoredEvent):
            resolved.append(event)  # nothing will act on them; keep what Meta named
            continue
        page_id = pages_of.get(event.page_id)
        if page_id is None:
            resolved.append(
                IgnoredEvent(
                    page_id=event.page_id, channel=Channel.INSTAGRAM, reason=UNKNOWN_ACCOUNT, detail=event.kind.value
                )
            )
            continue
        resolved.append(dataclasses.replace(event, page_id=page_id, account_id=event.page_id))
    return resolved


async def fetch_account_pages(session: AsyncSession, account_ids: set[str]) -> dict[str, str]:
    """Instagram account id -> its linked Page's id, for the accounts the shop knows."""
    if not account_ids:
        return {}
    rows = await session.execute(
        select(InstagramAccount.account_id, InstagramAccount.page_id).where(
            InstagramAccount.account_id.in_(account_ids)
        )
    )
    return {account: page for account, page in rows.all()}


async def resolve_instagram(session: AsyncSession, events: list[Event]) -> list[Event]:
    """`resolve_accounts` with the links read from SQL (one query, only when Instagram events came)."""
    accounts = {e.page_id for e in events if e.channel is Channel.INSTAGRAM and e.account_id is None and e.page_id}
    if not accounts:
        return events
    pages_of = await fetch_account_pages(session, accounts)
    for unknown in sorted(accounts - pages_of.keys()):
        log.warning(
            "Instagram account %s is linked to no Page of the shop (instagram: in the shop file); ignored", unknown
        )
    return resolve_accounts(events, pages_of)
