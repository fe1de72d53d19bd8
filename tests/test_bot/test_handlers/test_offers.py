"""First-N keyword offers: "the first 20 who comment SALE get 10% off", decided in arrival order like stock,
told in the private reply in the shopper's language."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.handlers.comments import STUCK_AFTER, Allocator
from bot.runtime.clock import utcnow
from bot.store.tables import CommentLog
from carts.comment_order_repository import attach_live_video
from carts.coupon_rules import Discount, DiscountKind, OfferSpec
from carts.coupon_tables import CouponCode, CouponOffer, OfferClaim
from carts.coupons import OfferInfo, create_offer
from carts.tables import Campaign, StockClaim
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack
from tests.test_bot.test_handlers.test_comments import (  # noqa: F401  (the `shop` fixture)
    Shop,
    comment,
    comment_on,
    private_replies,
    run_workers,
    seed_shop,
    shop,
)


async def make_offer(
    sessions: async_sessionmaker[AsyncSession],
    quantity: int = 20,
    keywords: tuple[str, ...] = ("SALE", "優惠"),
    min_spend: Decimal | None = None,
) -> OfferInfo:
    async with sessions() as session, session.begin():
        campaign = (await session.execute(select(Campaign).where(Campaign.key == "live"))).scalar_one()
        spec = OfferSpec(
            keywords, quantity, Discount(DiscountKind.PERCENT, Decimal(10)), min_spend, utcnow() + timedelta(days=2)
        )
        return await create_offer(session, campaign, spec, utcnow())


async def test_200_keyword_comments_for_20_vouchers_with_4_workers_the_earliest_20_get_one(shop: Shop) -> None:  # noqa: F811
    offer = await make_offer(shop.sessions, quantity=20)
    arrival = [3_000_000 + n for n in range(1, 201)]
    for shopper in arrival:
        # Every third also orders in the same comment: both happen.
        await shop.stream.append(comment(shopper, "SALE A+1" if shopper % 3 == 0 else "sale!"))

    async def settled() -> bool:
        async with shop.sessions() as session:
            pending = await session.execute(
                select(func.count()).select_from(OfferClaim).where(OfferClaim.status == "pending")
            )
            decided = await session.execute(
                select(func.count()).select_from(OfferClaim).where(OfferClaim.status != "pending")
            )
            backlog = (await shop.stream.gauges()).backlog
            return pending.scalar_one() == 0 and decided.scalar_one() == 200 and backlog == 0

    await run_workers(shop, 4, settled, slow_first=0.5)
    async with shop.sessions() as session:
        claims = (await session.execute(select(OfferClaim.psid, OfferClaim.status).order_by(OfferClaim.arrival))).all()
        given = await session.scalar(select(CouponOffer.given).where(CouponOffer.id == offer.id))
        codes = (await session.execute(select(CouponCode.psid))).scalars().all()
        outcomes = dict((await session.execute(select(CommentLog.author_id, CommentLog.outcome))).all())
        stock_claims = await session.scalar(select(func.count()).select_from(StockClaim))
    assert [int(p) for p, s in claims if s == "given"] == arrival[:20]  # the earliest 20, not who finished first
    assert {s for _, s in claims[20:]} == {"all_taken"}
    assert given == 20 and sorted(int(p) for p in codes) == arrival[:20]  # one code each, never a 21st
    assert stock_claims == len([s for s in arrival if s % 3 == 0])  # the orders went on as well
    assert {outcomes[str(p)] for p in arrival if p % 3} == {"offer"}
    orders = [p for p in arrival if p % 3 == 0]  # 66 of them for 50 roses: the stock's own line still holds
    assert [outcomes[str(p)] for p in orders] == ["added"] * 50 + ["waitlisted"] * 16

    # Meta delivers them all again (retries, a reclaimed entry): nothing changes.
    for shopper in arrival:
        await shop.stream.append(comment(shopper, "sale!"))

    async def drained() -> bool:
        return (await shop.stream.gauges()).backlog == 0

    await run_workers(shop, 4, drained)
    async with shop.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OfferClaim)) == 200
        assert await session.scalar(select(CouponOffer.given).where(CouponOffer.id == offer.id)) == 20


async def test_a_shopper_gets_one_voucher_however_often_they_say_the_keyword(shop: Shop) -> None:  # noqa: F811
    await make_offer(shop.sessions, quantity=5)
    for n in range(3):
        await shop.stream.append(comment(7, "SALE", comment_id=f"2000000000001_7{n}"))
    await shop.stream.append(comment(8, "ＳＡＬＥ"))

    async def settled() -> bool:
        async with shop.sessions() as session:
            return (
                await session.scalar(select(func.count()).select_from(OfferClaim).where(OfferClaim.status != "pending"))
            ) == 4

    await run_workers(shop, 2, settled)
    async with shop.sessions() as session:
        rows = (await session.execute(select(OfferClaim.psid, OfferClaim.status).order_by(OfferClaim.arrival))).all()
        assert await session.scalar(select(CouponOffer.given)) == 2
    assert [tuple(r) for r in rows] == [("7", "given"), ("7", "already"), ("7", "already"), ("8", "given")]


def reply_text(call: dict[str, Any]) -> str:
    return call["body"]["message"]["attachment"]["payload"]["text"]


async def test_the_private_reply_gives_the_code_and_the_later_ones_are_told_all_are_taken(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    await make_offer(bot_stack.sessions, quantity=1, min_spend=Decimal(300))
    first = await bot_stack.emulator.deliver_comment(
        PAGE_ID, "2000000000001", "3000000000301", "SALE A+1", user_name="Amy Chan", comment_id="2000000000001_301"
    )
    assert first["status"] == 200

    async def replied(n: int) -> Any:
        async def check() -> bool:
            return len(await private_replies(bot_stack)) == n

        return check

    await wait_until(await replied(1), what="the first shopper's private reply")
    async with bot_stack.sessions() as session:
        code = (await session.execute(select(CouponCode.code))).scalar_one()
    [call] = await private_replies(bot_stack)
    lines = reply_text(call).splitlines()
    assert lines[:2] == ["Hi Amy!", "✅ A Rose bouquet ×1 added"]
    assert lines[2].startswith(f"🎁 You got a voucher! Code {code}: 10% off. For orders of HK$300 or more. Use it by ")
    assert lines[2].endswith(". It is applied at checkout.")
    assert lines[-1] == "🛒 Cart: 1 item · HK$380"

    # The second shopper, in Chinese, after the only voucher went: a polite answer, never silence.
    await bot_stack.emulator.deliver_comment(
        PAGE_ID, "2000000000001", "3000000000302", "優惠", user_name="陳大文", comment_id="2000000000001_302"
    )
    await wait_until(await replied(2), what="the second shopper's private reply")
    second = next(c for c in await private_replies(bot_stack) if c["body"]["recipient"]["comment_id"].endswith("302"))
    assert reply_text(second).splitlines() == [
        "陳大文你好！",
        "🎁 對不起，這次的優惠券已經全部送出。多謝支持！",
        "",
        "🛒 你的購物車是空的",
    ]

    async def trail() -> bool:
        async with bot_stack.sessions() as session:
            rows = dict((await session.execute(select(CommentLog.comment_id, CommentLog.outcome))).all())
        return rows == {"2000000000001_301": "added", "2000000000001_302": "offer"}

    await wait_until(trail, what="both comments have their outcome")


async def test_a_keyword_said_before_the_live_video_was_attached_gets_its_voucher_once_it_is(shop: Shop) -> None:  # noqa: F811
    now = utcnow()
    async with shop.sessions() as session, session.begin():
        live = Campaign(
            key="tonight",
            title="Tonight's live",
            page_id=PAGE_ID,
            next_live=True,
            starts_at=now - timedelta(minutes=5),
            ends_at=now + timedelta(hours=3),
            created_at=now,
            updated_at=now,
        )
        session.add(live)
        await session.flush()
        spec = OfferSpec(("SALE",), 5, Discount(DiscountKind.AMOUNT, Decimal(50)), None, None)
        await create_offer(session, live, spec, now)
    await shop.stream.append(comment_on(f"{PAGE_ID}_7770001", 1, "SALE!!", "7770001_1"))

    async def logged() -> bool:
        return (await shop.stream.gauges()).backlog == 0 and bool(
            await shop.scalar(select(func.count()).select_from(CommentLog))
        )

    await run_workers(shop, 1, logged)
    async with shop.sessions() as session, session.begin():
        await attach_live_video(session, PAGE_ID, "7770001", utcnow())
    await Allocator(shop.stream, shop.sessions).run(now=utcnow() + STUCK_AFTER + timedelta(seconds=1))
    async with shop.sessions() as session:
        outcome = (await session.execute(select(CommentLog.outcome))).scalar_one()
        claim = (await session.execute(select(OfferClaim.status))).scalar_one()
    assert (outcome, claim) == ("offer", "given")
