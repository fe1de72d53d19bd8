"""The funnel's figures equal those counted from the database (bot/inbox/funnel.py, carts/funnel_rules.py).

A live is built through the real handlers: comments (chatter, orders, sizes missing, unknown codes, the Page's
own, an edit) go through the ingest stream, the workers and the allocator; a product sells out and its
waitlist fills; shoppers check out, pay, leave orders unpaid, cancel (the waitlist gets the units), let a hold
expire and merge two orders. Every figure is then compared with a count written here in plain SQL.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text, update

from bot.inbound import webhook_factory as wf
from bot.inbound.ingest import IngestStream
from bot.inbox.funnel import FunnelCache, fetch_funnel
from bot.runtime.clock import utcnow
from bot.runtime.redis import redis_client
from bot.runtime.redis_keys import RedisKeys
from bot.store.db import create_engine, create_schema, session_factory
from carts.order_rules import CheckoutForm
from carts.order_tables import CheckoutToken
from carts.orders import (
    cancel_order,
    fetch_or_create_checkout_token,
    mark_paid,
    merge_orders,
    place_order,
)
from carts.stock import expire_holds
from carts.tables import Campaign, StockClaim
from tests.conftest import PAGE_ID, make_settings
from tests.test_bot.test_handlers.test_comments import POST, Shop, all_decided, run_workers, seed_shop

HK = ZoneInfo("Asia/Hong_Kong")
# What a comment that orders ends as (carts.comment_orders.CommentOutcome), written out here on purpose.
ORDER_OUTCOMES = ("added", "waitlisted", "pending", "needs_variant", "over_limit", "unknown_code", "ambiguous")
FORM = CheckoutForm("Chan Tai Man", "+852 9123 4567", "delivery", "1 Queen's Road, Central")


@pytest.fixture
async def live(tmp_path: Path, redis_server) -> AsyncIterator[Shop]:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, redis_server.url, worker_batch_size=20)
    engine = await asyncio.to_thread(create_engine, settings.sqlalchemy_url)
    await create_schema(engine)
    sessions = session_factory(engine)
    await seed_shop(sessions, stock=5)  # rose bouquet A: 5 units, HK$380; linen shirt B: sizes, unlimited, HK$890
    redis = redis_client(redis_server.url)
    try:
        yield Shop(settings, IngestStream(redis, RedisKeys(settings.key_prefix)), sessions)
    finally:
        await redis.aclose()
        await engine.dispose()


def said(user: str, message: str, at: datetime, comment_id: str, verb: str = "add") -> bytes:
    return wf.encode(
        wf.comment_delivery(
            page_id=PAGE_ID,
            post_id=POST,
            message=message,
            user_id=user,
            comment_id=comment_id,
            created_time=int(at.timestamp()),
            verb=verb,
        )
    )


CHATTER = ["好靚呀!", "hello from Tsuen Wan", "幾錢?", "有冇其他顏色", "❤️❤️", "主播好靚", "ship to Taiwan?", "+"]


async def checkout(shop: Shop, psid: str, now: datetime) -> str:
    async with shop.sessions() as session, session.begin():
        token = await fetch_or_create_checkout_token(session, PAGE_ID, psid, now)
        nonce = (await session.execute(select(CheckoutToken.nonce).where(CheckoutToken.token == token))).scalar_one()
        placed = await place_order(session, token, nonce, FORM, now)
        return placed.order.number


async def build_live(shop: Shop) -> datetime:
    """A 25-minute live with its after-sale; returns the time the figures are read at."""
    start = utcnow() - timedelta(minutes=30)
    n = 0

    async def comment(user: str, message: str, minute: float, verb: str = "add", cid: str | None = None) -> None:
        nonlocal n
        n += 1
        await shop.stream.append(
            said(user, message, start + timedelta(minutes=minute), cid or f"2000000000001_{n}", verb)
        )

    for i in range(120):  # chatter all along, a little more at the start
        await comment(f"31{i % 40:03d}", CHATTER[i % len(CHATTER)], (i * 0.2) % 25)
    for i in range(12):  # 12 want the rose bouquet; 5 units: 5 held, 7 on the waitlist
        await comment(f"32{i:03d}", "A+1", 3 + i * 0.1)
    for i, text_ in enumerate(["B+1 M", "b+2 L", "B+1 S", "B+1 M"]):
        await comment(f"33{i:03d}", text_, 8 + i)
    for i in range(3):  # the size is missing: asked in the chat, nothing held
        await comment(f"34{i:03d}", "B+1", 12 + i)
    await comment("35000", "Z+1", 14)  # no such code
    await comment("35001", "Z+2 Y+1", 14.5)
    await comment(PAGE_ID, "A 賣晒!B 仲有", 15)  # the Page's own: never counted
    await comment("33000", "B+1 L", 20)  # a second order of the first B shopper (merged later)
    await comment("31001", "好靚呀!!", 21, verb="edited", cid="2000000000001_2")  # an edit is not a new comment

    async def settled() -> bool:
        return await all_decided(shop, 12 + 4 + 1)

    await run_workers(shop, 2, settled)
    now = utcnow()
    # After the live: rose holders 0-3 check out, 4 lets the hold run out; shirts are checked out too.
    numbers = {psid: await checkout(shop, psid, now) for psid in ("32000", "32001", "32002", "32003", "33001", "33002")}
    # Shopper 33000's two shirt comments are held in one cart: one order.
    numbers["33000"] = await checkout(shop, "33000", now)
    async with shop.sessions() as session, session.begin():
        for psid in ("32000", "32001", "33000", "33001"):
            await mark_paid(session, numbers[psid], now=now)
        await cancel_order(session, numbers["32002"], now)  # its unit goes to the first in line: 32005
    numbers["32005"] = await checkout(shop, "32005", now)  # the waitlisted shopper buys
    async with shop.sessions() as session, session.begin():
        await mark_paid(session, numbers["32005"], now=now)
        await session.execute(
            update(StockClaim)
            .where(StockClaim.psid == "32004", StockClaim.status == "held")
            .values(expires_at=now - timedelta(seconds=1))
        )
        await expire_holds(session, now)  # 32004's unit goes to 32006, who does not buy
    # 33003 checks out one shirt, then the next: two unpaid orders merged into one, then paid.
    first = await checkout(shop, "33003", now)
    await shop.stream.append(said("33003", "B+1 S", start + timedelta(minutes=22), "2000000000001_9001"))

    async def second_held() -> bool:
        return await all_decided(shop, 12 + 4 + 1 + 1)

    await run_workers(shop, 1, second_held)
    second = await checkout(shop, "33003", now)
    async with shop.sessions() as session, session.begin():
        merged = await merge_orders(session, first, [second], now)
        await mark_paid(session, merged.order.number, now=now)
    return now


async def counted(shop: Shop, sql: str, **params: object) -> list[tuple[object, ...]]:
    async with shop.sessions() as session:
        return [tuple(row) for row in (await session.execute(text(sql), params)).all()]


async def test_the_funnels_figures_equal_those_counted_from_the_database(live: Shop) -> None:
    now = await build_live(live)
    async with live.sessions() as session:
        campaign = (await session.execute(select(Campaign).where(Campaign.key == "live"))).scalar_one()
        funnel = await fetch_funnel(session, campaign, HK, now)
    campaign_id = campaign.id
    shoppers = "FROM comment_log WHERE post_id = :post AND verb = 'add' AND author_id <> :page"
    [(comments,)] = await counted(live, f"SELECT COUNT(*) {shoppers}", post=POST, page=PAGE_ID)
    assert comments == 120 + 12 + 4 + 3 + 2 + 1 + 1  # chatter, roses, shirts, sizes missing, unknown, 2nd orders
    order_outcomes = f"({', '.join(repr(o) for o in ORDER_OUTCOMES)})"
    [(order_comments,)] = await counted(
        live, f"SELECT COUNT(*) {shoppers} AND outcome IN {order_outcomes}", post=POST, page=PAGE_ID
    )
    assert order_comments == 12 + 4 + 3 + 2 + 1 + 1
    stage_sql = f"""
        SELECT COUNT(DISTINCT c.comment_id) FROM stock_claim c
        LEFT JOIN shop_order o ON o.id = c.order_id
        WHERE c.campaign_id = :campaign AND c.comment_id IN (SELECT comment_id {shoppers}) AND {{cond}}"""
    [(held,)] = await counted(
        live,
        stage_sql.format(cond="c.status IN ('held', 'sold', 'expired', 'released')"),
        campaign=campaign_id,
        post=POST,
        page=PAGE_ID,
    )
    [(out,)] = await counted(
        live, stage_sql.format(cond="c.order_id IS NOT NULL"), campaign=campaign_id, post=POST, page=PAGE_ID
    )
    paid_statuses = "('paid', 'packed', 'shipped', 'delivered', 'partly_returned', 'returned')"
    [(paid,)] = await counted(
        live, stage_sql.format(cond=f"o.status IN {paid_statuses}"), campaign=campaign_id, post=POST, page=PAGE_ID
    )
    # Roses: 0-4 held, then 32005 and 32006 from the waitlist; shirts: 4 + 33000's second + 33003's second.
    assert held == 7 + 4 + 1 + 1
    assert (out, paid) == (4 + 1 + 6, 3 + 5)  # 32002's order was cancelled: checked out, never paid
    assert (
        funnel.stages.comments,
        funnel.stages.order_comments,
        funnel.stages.held,
        funnel.stages.checked_out,
        funnel.stages.paid,
    ) == (comments, order_comments, held, out, paid)

    # Per product, in units and money, from the claims and the price each order sold them at.
    rows = await counted(
        live,
        f"""
        SELECT c.product_id,
               SUM(CASE WHEN c.status IN ('held', 'sold', 'expired', 'released') THEN c.qty ELSE 0 END),
               SUM(CASE WHEN c.order_id IS NOT NULL THEN c.qty ELSE 0 END),
               SUM(CASE WHEN o.status IN {paid_statuses} THEN c.qty ELSE 0 END),
               SUM(CASE WHEN o.status IN {paid_statuses}
                   THEN c.qty * (SELECT MAX(l.unit_price) FROM order_line l
                                 WHERE l.order_id = o.id AND l.product_id = c.product_id) ELSE 0 END),
               SUM(CASE WHEN c.status = 'waitlisted' THEN c.qty ELSE 0 END),
               SUM(CASE WHEN c.promoted_at IS NOT NULL THEN c.qty ELSE 0 END),
               SUM(CASE WHEN c.promoted_at IS NOT NULL AND o.status IN {paid_statuses} THEN c.qty ELSE 0 END)
        FROM stock_claim c LEFT JOIN shop_order o ON o.id = c.order_id
        WHERE c.campaign_id = :campaign GROUP BY c.product_id ORDER BY c.product_id""",
        campaign=campaign_id,
    )
    by_id = {p.product_id: p for p in funnel.products}
    assert [p.code for p in funnel.products] == ["A", "B"]
    for product_id, units_held, units_out, units_paid, gmv, waiting, promoted, promoted_paid in rows:
        p = by_id[int(product_id)]  # type: ignore[call-overload]
        assert (p.units_held, p.units_checked_out, p.units_paid) == (units_held, units_out, units_paid)
        assert p.gmv == Decimal(str(gmv)).quantize(Decimal("0.01"))
        assert (p.waitlist_now, p.units_promoted, p.promoted_paid) == (waiting, promoted, promoted_paid)
    rose, shirt = funnel.products
    assert (rose.units_paid, rose.gmv, rose.waitlist_now, rose.units_promoted, rose.promoted_paid) == (
        3,
        Decimal("1140.00"),
        5,
        2,
        1,
    )
    assert rose.sell_through == Decimal("0.6000")  # 3 paid of 5
    assert shirt.sell_through is None  # unlimited stock
    [(orders,)] = await counted(
        live,
        f"""SELECT COUNT(DISTINCT o.id) FROM shop_order o JOIN stock_claim c ON c.order_id = o.id
            WHERE c.campaign_id = :campaign AND o.status IN {paid_statuses}""",
        campaign=campaign_id,
    )
    assert funnel.paid_orders == orders == 6  # 32000, 32001, 32005, 33000, 33001 and 33003's merged order
    [(gmv,)] = await counted(
        live,
        f"""SELECT SUM(l.qty * l.unit_price) FROM order_line l JOIN shop_order o ON o.id = l.order_id
            WHERE o.status IN {paid_statuses}""",
    )
    assert funnel.gmv == Decimal(str(gmv)).quantize(Decimal("0.01"))  # every paid order here is this live's
    assert funnel.aov == (funnel.gmv / 6).quantize(Decimal("0.01"))

    # Comments per minute in Hong Kong time, by when the shopper wrote them.
    times = await counted(live, f"SELECT created_time, outcome {shoppers}", post=POST, page=PAGE_ID)
    assert funnel.series.minutes == 1
    per_minute: Counter[datetime] = Counter()
    orders_per_minute: Counter[datetime] = Counter()
    for at, outcome in times:
        moment = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
        minute = (
            (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(HK).replace(second=0, microsecond=0)
        )
        per_minute[minute] += 1
        orders_per_minute[minute] += outcome in ORDER_OUTCOMES
    shown = {b.start: (b.comments, b.order_comments) for b in funnel.series.buckets}
    assert {m: shown[m] for m in per_minute} == {m: (per_minute[m], orders_per_minute[m]) for m in per_minute}
    assert sum(c for c, _ in shown.values()) == comments  # the rest are empty minutes
    starts = [b.start for b in funnel.series.buckets]
    assert starts == sorted(starts) and all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(starts))
    assert starts[0].tzinfo == HK and starts[0] == min(per_minute)


async def test_the_cache_computes_once_for_callers_at_the_same_time_and_again_after_its_time(live: Shop) -> None:
    async with live.sessions() as session:
        campaign = (await session.execute(select(Campaign).where(Campaign.key == "live"))).scalar_one()
    cache = FunnelCache(timedelta(seconds=5))
    now = utcnow()

    async def compute():  # type: ignore[no-untyped-def]
        async with live.sessions() as session:
            return await fetch_funnel(session, campaign, HK, now)

    answers = await asyncio.gather(*(cache.get(campaign.id or 0, now, compute) for _ in range(50)))
    assert cache.computed == 1 and len({id(a) for a in answers}) == 1
    await cache.get(campaign.id or 0, now + timedelta(seconds=4), compute)
    assert cache.computed == 1
    await cache.get(campaign.id or 0, now + timedelta(seconds=5), compute)
    assert cache.computed == 2


async def test_a_campaign_with_no_comments_has_zeros(live: Shop) -> None:
    async with live.sessions() as session:
        campaign = (await session.execute(select(Campaign).where(Campaign.key == "live"))).scalar_one()
        funnel = await fetch_funnel(session, campaign, HK, utcnow())
    assert funnel.stages.steps()[0] == ("comments", 0, None)
    assert funnel.gmv == 0 and funnel.aov is None and funnel.series.buckets == ()
    assert [(p.code, p.units_paid, p.sell_through) for p in funnel.products] == [("A", 0, Decimal(0)), ("B", 0, None)]
