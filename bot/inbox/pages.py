"""The console's view of the shop's Facebook Pages: for each Page of the owner, whether this server holds its
token and whether Meta takes it (a live read, `fetch_page_info`, which also gives the Page's name), the
webhook subscription at the app's level and the Page's (the subscription keeper's last findings), the
Messenger profile (the profile keeper's), whether sending is paused and why (`PageState`), and the linked
Instagram accounts.

Tokens themselves are never read back or shown here (invariant 8): they come from the environment or the
secrets file, set with `plusone page-token`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.outbound.graph import GraphClient, GraphError, GraphErrorClass
from bot.outbound.subscriptions import APP_LEVEL
from bot.store.tables import InstagramAccount, PageState

PROBE_TIMEOUT_S = 5.0  # a page of the console waits no longer for Meta; past it the token's state is unknown


@dataclass(frozen=True)
class TokenProbe:
    """What Meta said just now when asked for the Page with its token."""

    state: str  # works | refused | unknown (Meta did not answer, or answered with something else) | missing
    name: str | None = None
    username: str | None = None
    error: str | None = None  # Meta's words when it did not take the token


@dataclass(frozen=True)
class PageStatus:
    page_id: str
    token: TokenProbe
    subscription: Mapping[str, Any] | None  # the keeper's report for this Page; None: not checked yet
    profile: Mapping[str, Any] | None  # the profile keeper's report; None: not checked yet
    paused: PageState | None  # its sending is paused: kind, Meta's words, since, until
    instagram: list[InstagramAccount] = field(default_factory=list)


async def probe_token(graph: GraphClient, page_id: str) -> TokenProbe:
    """Ask Meta for the Page with its token: the token works, Meta refused it, or we could not tell."""
    if not graph.has_page(page_id):
        return TokenProbe("missing")
    try:
        info = await asyncio.wait_for(graph.fetch_page_info(page_id), PROBE_TIMEOUT_S)
    except TimeoutError:
        return TokenProbe("unknown")  # the page says Meta could not be asked; there are no words of Meta's
    except GraphError as error:
        refused = error.error_class in (GraphErrorClass.BAD_TOKEN, GraphErrorClass.PERMISSION)
        return TokenProbe("refused" if refused else "unknown", error=str(error))
    return TokenProbe("works", name=info.name, username=info.username)


async def page_statuses(
    session: AsyncSession,
    graph: GraphClient,
    pages: Iterable[str],
    subscriptions: Mapping[str, Any],
    profiles: Mapping[str, Any],
) -> list[PageStatus]:
    """The status of each of `pages` (the owner's), by id; the keepers' reports as `/healthz` reads them."""
    page_ids = sorted(set(pages))
    paused = {
        state.page_id: state
        for state in (
            await session.execute(
                select(PageState).where(PageState.page_id.in_(page_ids), PageState.sending_paused.is_(True))
            )
        ).scalars()
    }
    instagram: dict[str, list[InstagramAccount]] = {}
    for account in (
        await session.execute(
            select(InstagramAccount).where(InstagramAccount.page_id.in_(page_ids)).order_by(InstagramAccount.account_id)
        )
    ).scalars():
        instagram.setdefault(account.page_id, []).append(account)
    probes = await asyncio.gather(*(probe_token(graph, page_id) for page_id in page_ids))
    return [
        PageStatus(
            page_id=page_id,
            token=probe,
            subscription=subscriptions.get(page_id),
            profile=profiles.get(page_id),
            paused=paused.get(page_id),
            instagram=instagram.get(page_id, []),
        )
        for page_id, probe in zip(page_ids, probes, strict=True)
    ]


def app_subscription(subscriptions: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The keeper's report of the app's own level; None when it has not checked yet."""
    return subscriptions.get(APP_LEVEL)
