"""The SQL of selling through comments: campaigns of a post or live video, claims recorded and changed.

A thin layer around the pure `carts.comment_orders`: it loads what the plan needs and writes what the
plan decided. Stock decisions themselves are `carts.stock`'s. `now` is always the caller's.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from carts.comment_orders import (
    CampaignInfo,
    CampaignProductInfo,
    ItemOutcome,
    OrderComment,
    Used,
    edit_claim,
    plan_edit,
)
from carts.stock import release_claims
from carts.stock_rules import COUNTED_STATUSES, LIVE_STATUSES
from carts.tables import Campaign, CampaignProduct, Product, StockClaim
from parsers.order_comment import CatalogEntry, OrderParser, product_keywords

# Which live video a post is (the bot knows: it asks Meta for each video's post): (session, page, post) → id.
VideoOfPost = Callable[[AsyncSession, str, str], Awaitable[str | None]]


def live_video_ids(post_id: str, video_of_post: str | None) -> list[str]:
    """The live videos a comment's post may be: the one whose post Meta named so, and the video the post id
    names when it is `{page}_{video}` (how a comment read from the video itself is named before its post is
    known). Pure."""
    ids = [video_of_post] if video_of_post else []
    object_id = post_id.split("_", 1)[-1]
    return ids if object_id in ids else [*ids, object_id]


class CampaignLookup:
    """Finds the campaign a comment's post belongs to, with the parser of its codes cached per version.

    A live video's post is not `{page}_{video}` (docs/meta-platform.md, "Live video ids and statuses"):
    `video_of_post` says which video a post is, so a feed comment on the video's post, a stream or poll
    comment named after the video, and any comment id prefix land on the same campaign.
    """

    def __init__(self, video_of_post: VideoOfPost | None = None) -> None:
        self._parsers: dict[tuple[Any, ...], OrderParser] = {}
        self._video_of_post = video_of_post

    async def fetch(self, session: AsyncSession, page_id: str, post_id: str, now: datetime) -> CampaignInfo | None:
        video = await self._video_of_post(session, page_id, post_id) if self._video_of_post else None
        matches = (
            (
                await session.execute(
                    select(Campaign)
                    .where(
                        Campaign.page_id == page_id,
                        or_(Campaign.post_id == post_id, Campaign.live_video_id.in_(live_video_ids(post_id, video))),
                    )
                    .order_by(Campaign.starts_at)
                )
            )
            .scalars()
            .all()
        )
        # Several sales on one post over time: the one open now, else the latest (it answers "closed").
        campaign = next((c for c in matches if c.starts_at <= now < c.ends_at), matches[-1] if matches else None)
        if campaign is None:
            return None
        rows = (
            await session.execute(
                select(
                    CampaignProduct.order_code,
                    Product.id,
                    Product.name,
                    Product.variants,
                    Product.nicknames,
                    Product.name_keyword,
                )
                .join(Product, Product.id == CampaignProduct.product_id)
                .where(CampaignProduct.campaign_id == campaign.id, Product.active.is_(True))
            )
        ).all()
        products = {
            code: CampaignProductInfo(
                pid,
                code,
                name,
                {k: tuple(v) for k, v in json.loads(variants).items()},
                product_keywords(code, name, json.loads(nicknames or "[]"), name_keyword),
            )
            for code, pid, name, variants, nicknames, name_keyword in rows
        }
        return CampaignInfo(
            campaign.id,
            campaign.key,
            campaign.starts_at,
            campaign.ends_at,
            campaign.per_shopper_limit,
            campaign.hold_minutes,
            products,
            self._parser(campaign, products),
            campaign.closed_reply,
        )

    def _parser(self, campaign: Campaign, products: dict[str, CampaignProductInfo]) -> OrderParser:
        """The campaign's parser, built again only when the campaign or its products changed."""
        version = (
            campaign.id,
            campaign.updated_at,
            tuple(sorted((c, p.product_id, repr(p.variants), p.keywords) for c, p in products.items())),
        )
        parser = self._parsers.get(version)
        if parser is None:
            parser = OrderParser(
                CatalogEntry(code=p.order_code, name=p.name, variants=p.variants, keywords=p.keywords)
                for p in products.values()
            )
            self._parsers = {k: v for k, v in self._parsers.items() if k[0] != campaign.id}
            self._parsers[version] = parser
        return parser


async def attach_live_video(session: AsyncSession, page_id: str, video_id: str, now: datetime) -> Campaign | None:
    """The Page's "next live" campaign that is open now takes the live video; that campaign, if any."""
    campaign = (
        (
            await session.execute(
                select(Campaign)
                .where(
                    Campaign.page_id == page_id,
                    Campaign.next_live.is_(True),
                    Campaign.live_video_id.is_(None),
                    Campaign.starts_at <= now,
                    Campaign.ends_at > now,
                )
                .order_by(Campaign.starts_at)
            )
        )
        .scalars()
        .first()
    )
    if campaign is not None:
        campaign.live_video_id = video_id
        session.add(campaign)
    return campaign


async def claimed_quantities(session: AsyncSession, campaigns: Sequence[CampaignInfo], psids: set[str]) -> Used:
    """Units each of these shoppers has claimed (and not given back) in the campaigns that have a limit."""
    limited = [c.id for c in campaigns if c.per_shopper_limit is not None]
    if not limited or not psids:
        return {}
    rows = await session.execute(
        select(StockClaim.campaign_id, StockClaim.psid, StockClaim.product_id, func.sum(StockClaim.qty))
        .where(
            StockClaim.campaign_id.in_(limited),
            StockClaim.psid.in_(sorted(psids)),
            StockClaim.status.in_(COUNTED_STATUSES),
        )
        .group_by(StockClaim.campaign_id, StockClaim.psid, StockClaim.product_id)
    )
    return {(c, p, pid): int(q) for c, p, pid, q in rows.all()}


async def insert_claims(session: AsyncSession, claims: list[dict[str, Any]]) -> None:
    """New comments' planned claims, with one Core executemany."""
    if claims:
        await session.execute(insert(StockClaim.__table__), claims)


async def apply_edit(
    session: AsyncSession,
    comment: OrderComment,
    campaign: CampaignInfo,
    claims: list[StockClaim],
    arrival: str,
    edit: str,
    now: datetime,
    now_selling: str | None = None,
) -> list[dict[str, Any]]:
    """Apply the difference between what an edited comment asks now and what it claimed; the trail's items.

    More of an item is a new claim, in line from the edit's arrival; less releases the latest units first.
    `now_selling`: the product a quantity without a code stands for (`plan_edit`).
    """
    live = [c for c in claims if c.status in LIVE_STATUSES]
    changes: list[dict[str, Any]] = []
    for line, delta in plan_edit(campaign, comment.message, claims, now, now_selling).items():
        if delta > 0:
            session.add(StockClaim(**edit_claim(comment, campaign, line, delta, arrival, edit, now)))
            changes.append({"product_id": line[0], "qty": delta, "outcome": ItemOutcome.CLAIMED})
        else:
            mine = [c for c in live if (c.product_id, c.variant) == line]
            released = await release_claims(session, mine, now, qty=-delta)
            changes += [{"product_id": d.product_id, "qty": d.qty, "outcome": d.status} for d in released]
    await session.flush()
    return changes


async def claim_statuses_of_comments(session: AsyncSession, comment_ids: set[str]) -> dict[str, set[str]]:
    """The statuses of each comment's claims (comments without claims are left out)."""
    statuses: dict[str, set[str]] = {}
    if comment_ids:
        rows = await session.execute(
            select(StockClaim.comment_id, StockClaim.status).where(StockClaim.comment_id.in_(comment_ids))
        )
        for comment_id, status in rows.all():
            statuses.setdefault(comment_id, set()).add(status)
    return statuses
