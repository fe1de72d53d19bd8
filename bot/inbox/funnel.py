"""What sold, counted in SQL: a campaign's funnel (comments → order comments → held → checked out → paid),
its products, money and comments per minute, for the live board, the report page and its Excel export.

Every figure is an aggregate (GROUP BY, COUNT(DISTINCT), conditional SUMs) over the comment log, the stock
claims, the orders and their lines, so a live of tens of thousands of comments costs a few statements and
no loop over rows; the same SQL runs on SQLite and PostgreSQL. What each figure counts is defined in
`carts.funnel_rules`, which also works out the rates, the average order value and the series.

`FunnelCache` keeps each campaign's figures a few seconds and computes them once for all who ask at the
same time: the board's live region asks again on every burst of comments, from every open browser.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from bot.inbox.board import _comments_of
from bot.store.tables import CommentLog
from carts.funnel_rules import (
    EVER_HELD,
    NOT_A_SHOPPER,
    NOT_ORDER_OUTCOMES,
    Funnel,
    Stages,
    build_series,
    product_rows,
)
from carts.order_rules import PAID_STATUSES
from carts.order_tables import Order, OrderLine
from carts.repository import fetch_currency
from carts.stock_rules import ClaimStatus
from carts.tables import Campaign, CampaignProduct, Product, StockClaim


class utc_minute(FunctionElement[Any]):
    """The UTC minute a time column falls in, in each database's own words (text on SQLite, a time on
    PostgreSQL; `_minute` reads either)."""

    inherit_cache = True


@compiles(utc_minute, "sqlite")
def _minute_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    # SQLite keeps times as UTC text, "2026-12-03 14:05:00.123456": its first 16 characters are the minute
    # (several times cheaper than parsing every row's time with strftime).
    return f"substr({compiler.process(next(iter(element.clauses)), **kw)}, 1, 16)"


@compiles(utc_minute, "postgresql")
def _minute_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return f"date_trunc('minute', {compiler.process(next(iter(element.clauses)), **kw)})"


def _minute(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value[:16]).replace(tzinfo=UTC)


def _aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _shoppers_comments(campaign: Campaign) -> Any:
    """The campaign's shoppers' comments (not the Page's own, not edits or removals)."""
    return and_(_comments_of(campaign), CommentLog.verb == "add", CommentLog.outcome.not_in(NOT_A_SHOPPER))


async def fetch_funnel(session: AsyncSession, campaign: Campaign, zone: tzinfo, now: datetime) -> Funnel:
    """The campaign's funnel at `now` (the series runs on to `now` while the campaign is open)."""
    # The comments, counted per minute in one pass: the totals, the first and last, and the series.
    written = func.coalesce(CommentLog.created_time, CommentLog.received_at)
    is_order = CommentLog.outcome.not_in(NOT_ORDER_OUTCOMES)
    minute = utc_minute(written).label("minute")
    rows = (
        await session.execute(
            select(
                minute,
                func.count(CommentLog.id),
                func.coalesce(func.sum(case((is_order, 1), else_=0)), 0),
                func.min(written),
                func.max(written),
            )
            .where(_shoppers_comments(campaign))
            .group_by(minute)
        )
    ).all()
    per_minute = [(_minute(m), int(c), int(o)) for m, c, o, _first, _last in rows]
    comments, order_comments = sum(c for _, c, _ in per_minute), sum(o for _, _, o in per_minute)
    first = min((_aware(f) for *_, f, _ in rows), default=None)  # type: ignore[type-var]
    last = max((_aware(lt) for *_, lt in rows), default=None)  # type: ignore[type-var]
    running = campaign.starts_at <= now < campaign.ends_at
    series = build_series(per_minute, zone, now if running else None)

    # Claims of the campaign, with their order's status and the price the order sold them at.
    prices = (
        select(OrderLine.order_id, OrderLine.product_id, func.max(OrderLine.unit_price).label("price"))
        .group_by(OrderLine.order_id, OrderLine.product_id)
        .subquery()
    )
    paid = Order.status.in_([str(s) for s in PAID_STATUSES])
    ever_held = StockClaim.status.in_(EVER_HELD)
    checked_out = StockClaim.order_id.is_not(None)
    claims = (
        select(StockClaim)
        .outerjoin(Order, Order.id == StockClaim.order_id)
        .where(StockClaim.campaign_id == campaign.id)
    )
    priced = claims.outerjoin(
        prices, and_(prices.c.order_id == StockClaim.order_id, prices.c.product_id == StockClaim.product_id)
    )

    # Comment stages: distinct comments with a claim of this campaign at that stage. A claim the merchant
    # made in the inbox for no comment has a comment id of its own ("agent:..."): no comment to count.
    of_comments = StockClaim.comment_id.not_like("agent:%")

    def distinct_comments(condition: Any) -> Any:
        return func.count(func.distinct(case((condition, StockClaim.comment_id))))

    held, out, paid_comments = (
        await session.execute(
            claims.with_only_columns(
                distinct_comments(ever_held), distinct_comments(checked_out), distinct_comments(paid)
            ).where(of_comments)
        )
    ).one()

    def units(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, StockClaim.qty), else_=0)), 0)

    per_product = (
        await session.execute(
            priced.with_only_columns(
                StockClaim.product_id,
                func.count(func.distinct(case((of_comments, StockClaim.comment_id)))).label("order_comments"),
                units(ever_held).label("units_held"),
                units(checked_out).label("units_checked_out"),
                units(paid).label("units_paid"),
                func.coalesce(func.sum(case((paid, StockClaim.qty * prices.c.price), else_=0)), 0).label("gmv"),
                units(StockClaim.status == ClaimStatus.WAITLISTED).label("waitlist_now"),
                units(StockClaim.promoted_at.is_not(None)).label("units_promoted"),
                units(and_(StockClaim.promoted_at.is_not(None), paid)).label("promoted_paid"),
            ).group_by(StockClaim.product_id)
        )
    ).all()
    paid_orders = (
        await session.execute(claims.with_only_columns(func.count(func.distinct(StockClaim.order_id))).where(paid))
    ).scalar_one()
    products = (
        await session.execute(
            select(Product.id, CampaignProduct.order_code, Product.name, Product.stock)
            .join(CampaignProduct, CampaignProduct.product_id == Product.id)
            .where(CampaignProduct.campaign_id == campaign.id)
            .order_by(CampaignProduct.order_code)
        )
    ).all()
    listed = [(int(pid), code, name, stock) for pid, code, name, stock in products]
    # A product sold in the campaign and since taken off it still shows (under its catalog code).
    missing = {row.product_id for row in per_product} - {pid for pid, *_ in listed}
    if missing:
        extra = await session.execute(
            select(Product.id, Product.code, Product.name, Product.stock).where(Product.id.in_(missing))
        )
        listed += [(int(pid), code, name, stock) for pid, code, name, stock in extra.all()]
    return Funnel(
        key=campaign.key,
        title=campaign.title,
        currency=await fetch_currency(session),
        as_of=now,
        stages=Stages(int(comments), int(order_comments), int(held), int(out), int(paid_comments)),
        products=product_rows(listed, {row.product_id: row._mapping for row in per_product}),
        paid_orders=int(paid_orders),
        series=series,
        first_comment=first,
        last_comment=last,
        live=bool(campaign.live_video_id or campaign.next_live),
    )


@dataclass
class _Entry:
    at: datetime
    funnel: Funnel


class FunnelCache:
    """Each campaign's figures, kept `ttl` and computed once for every caller that asks meanwhile.

    Hundreds of comments a second make every open board ask for fresh figures several times a second;
    the answer is at most `ttl` old and the database sees one computation per campaign per `ttl`, however
    many browsers are open. `now` is the caller's (tests move it).
    """

    def __init__(self, ttl: timedelta = timedelta(seconds=5)) -> None:
        self.ttl = ttl
        self._entries: dict[int, _Entry] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self.computed = 0  # how many times the figures were worked out (for tests and the bench)

    async def get(self, campaign_id: int, now: datetime, compute: Callable[[], Awaitable[Funnel]]) -> Funnel:
        lock = self._locks.setdefault(campaign_id, asyncio.Lock())
        async with lock:  # the second caller waits for the first one's answer rather than asking again
            entry = self._entries.get(campaign_id)
            if entry is not None and entry.at <= now < entry.at + self.ttl:
                return entry.funnel
            funnel = await compute()
            self.computed += 1
            self._entries[campaign_id] = _Entry(now, funnel)
            return funnel
