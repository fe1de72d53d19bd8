"""Comments on a campaign's post become stock claims; the allocator decides them in arrival order.

`CommentOrders.handle` runs in the comment's transaction: it finds the campaign of the post, parses the
comment with the campaign's codes (`parsers.order_comment`), records one outcome per item in the comment
log and a pending `StockClaim` for each item that can take stock. `Allocator.run` (after the worker has
acknowledged a batch, and now and then) decides pending claims below the stream's watermark, oldest
first (`carts.stock`), and records each comment's final outcome.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import utcnow
from bot.events import CommentEvent, CommentVerb
from bot.ingest import IngestStream
from bot.router import HandlerContext
from bot.tables import CommentLog
from carts.stock import END_OF_STREAM, allocate, arrival_key, products_with_pending_claims
from carts.tables import Campaign, CampaignProduct, Product, StockClaim
from parsers.order_comment import CatalogEntry, OrderParser

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CampaignProductInfo:
    product_id: int
    order_code: str
    name: str
    variants: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class CampaignInfo:
    """A campaign loaded once, with the parser built from its codes."""

    id: int
    key: str
    starts_at: datetime
    ends_at: datetime
    per_shopper_limit: int | None
    hold_minutes: int
    products: Mapping[str, CampaignProductInfo]  # by order code as configured
    parser: OrderParser

    def is_open(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


class ItemOutcome:
    CLAIMED = "claimed"  # stock requested; the allocator says held or waitlisted
    NEEDS_VARIANT = "needs_variant"
    OVER_LIMIT = "over_limit"
    UNKNOWN_CODE = "unknown_code"
    AMBIGUOUS = "ambiguous"


class CommentOrders:
    """The bot handler for order comments, with campaigns and their parsers cached per version."""

    def __init__(self) -> None:
        self._parsers: dict[tuple[Any, ...], OrderParser] = {}

    async def fetch_campaign(self, session: AsyncSession, page_id: str, post_id: str) -> CampaignInfo | None:
        campaign = (
            await session.execute(select(Campaign).where(Campaign.page_id == page_id, Campaign.post_id == post_id))
        ).scalar_one_or_none()
        if campaign is None:
            return None
        rows = (
            await session.execute(
                select(CampaignProduct.order_code, Product.id, Product.name, Product.variants)
                .join(Product, Product.id == CampaignProduct.product_id)
                .where(CampaignProduct.campaign_id == campaign.id, Product.active.is_(True))
            )
        ).all()
        products = {
            code: CampaignProductInfo(pid, code, name, {k: tuple(v) for k, v in json.loads(variants).items()})
            for code, pid, name, variants in rows
        }
        version = (
            campaign.id,
            campaign.updated_at,
            tuple(sorted((c, p.product_id, repr(p.variants)) for c, p in products.items())),
        )
        parser = self._parsers.get(version)
        if parser is None:
            parser = OrderParser(
                CatalogEntry(code=p.order_code, name=p.name, variants=p.variants) for p in products.values()
            )
            self._parsers = {k: v for k, v in self._parsers.items() if k[0] != campaign.id}
            self._parsers[version] = parser
        return CampaignInfo(
            campaign.id,
            campaign.key,
            campaign.starts_at,
            campaign.ends_at,
            campaign.per_shopper_limit,
            campaign.hold_minutes,
            products,
            parser,
        )

    async def on_campaign_post(self, event: CommentEvent, ctx: HandlerContext) -> dict[str, Any] | bool:
        """Filter: a new comment on a campaign's post; hands the campaign to the handler."""
        if event.verb is not CommentVerb.ADD or event.author_id is None:
            return False
        campaign = await self.fetch_campaign(ctx.session, event.page_id, event.post_id)
        return {"campaign": campaign} if campaign is not None else False

    async def handle(self, event: CommentEvent, ctx: HandlerContext, campaign: CampaignInfo) -> None:
        assert event.author_id is not None
        now = utcnow()
        items: list[dict[str, Any]] = []
        if not campaign.is_open(now):
            await _set_outcome(ctx.session, event.key, "campaign_closed", [])
            return
        parsed = campaign.parser.parse(event.message or "")
        arrival = arrival_key(ctx.stream_id or "0-0", ctx.position)
        for item in parsed.items:
            product = campaign.products[item.code]
            variant = dict(item.variant) if item.variant else {}
            missing = [name for name in product.variants if name not in variant]
            record = {"code": item.code, "qty": item.qty, "variant": variant or None}
            if missing:
                items.append({**record, "outcome": ItemOutcome.NEEDS_VARIANT, "missing": missing})
                continue
            qty = item.qty
            if campaign.per_shopper_limit is not None:
                already = await _claimed_qty(ctx.session, campaign.id, product.product_id, event.author_id)
                allowed = max(campaign.per_shopper_limit - already, 0)
                if allowed < qty:
                    items.append(
                        {
                            **record,
                            "qty": qty - allowed,
                            "outcome": ItemOutcome.OVER_LIMIT,
                            "limit": campaign.per_shopper_limit,
                        }
                    )
                    qty = allowed
            if qty == 0:
                continue
            variant_key = json.dumps(variant, sort_keys=True, ensure_ascii=False) if variant else ""
            ctx.session.add(
                StockClaim(
                    key=f"{event.comment_id}:{product.product_id}:{variant_key}",
                    campaign_id=campaign.id,
                    product_id=product.product_id,
                    page_id=event.page_id,
                    psid=event.author_id,
                    comment_id=event.comment_id,
                    variant=variant_key,
                    qty=qty,
                    arrival=arrival,
                    hold_minutes=campaign.hold_minutes,
                    created_at=now,
                )
            )
            items.append({**record, "qty": qty, "outcome": ItemOutcome.CLAIMED})
        items += [{"code": code, "outcome": ItemOutcome.UNKNOWN_CODE} for code in parsed.unknown]
        items += [{"qty": qty, "outcome": ItemOutcome.AMBIGUOUS} for qty in parsed.ambiguous]
        if not items:
            outcome = "not_an_order"
        elif any(i["outcome"] == ItemOutcome.CLAIMED for i in items):
            outcome = "pending"  # until the allocator decides
        else:
            outcome = items[0]["outcome"]
        await ctx.session.flush()
        await _set_outcome(ctx.session, event.key, outcome, items)


async def _claimed_qty(session: AsyncSession, campaign_id: int, product_id: int, psid: str) -> int:
    rows = await session.execute(
        select(StockClaim.qty).where(
            StockClaim.campaign_id == campaign_id,
            StockClaim.product_id == product_id,
            StockClaim.psid == psid,
            StockClaim.status.in_(["pending", "held", "sold"]),
        )
    )
    return sum(rows.scalars().all())


async def _set_outcome(session: AsyncSession, event_key: str, outcome: str, items: list[dict[str, Any]]) -> None:
    await session.execute(
        update(CommentLog)
        .where(CommentLog.event_key == event_key)
        .values(outcome=outcome, detail=json.dumps({"items": items}, ensure_ascii=False))
    )


class Allocator:
    """Decides pending stock claims that are safe to decide (below the stream's watermark)."""

    def __init__(self, stream: IngestStream, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.stream = stream
        self.sessions = sessions

    async def run(self) -> int:
        """Decide what can be decided now; the number of claims decided."""
        watermark_id = await self.stream.watermark()
        watermark = END_OF_STREAM if watermark_id is None else arrival_key(watermark_id, 0)
        decided = 0
        async with self.sessions() as session, session.begin():
            comments: set[str] = set()
            for product_id in await products_with_pending_claims(session, watermark):
                for decision in await allocate(session, product_id, watermark):
                    comments.add(decision.comment_id)
                    decided += 1
            for comment_id in comments:
                await _settle_comment(session, comment_id)
        return decided


async def _settle_comment(session: AsyncSession, comment_id: str) -> None:
    """A comment whose claims are all decided: added (something held) or waitlisted."""
    statuses = (
        (await session.execute(select(StockClaim.status).where(StockClaim.comment_id == comment_id))).scalars().all()
    )
    if "pending" in statuses:
        return
    outcome = "added" if "held" in statuses else "waitlisted"
    await session.execute(
        update(CommentLog)
        .where(CommentLog.comment_id == comment_id, CommentLog.verb == "add", CommentLog.outcome == "pending")
        .values(outcome=outcome)
    )
