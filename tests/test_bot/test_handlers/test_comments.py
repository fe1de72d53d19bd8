"""Order comments become stock claims, decided first come, first served, with several workers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.background import build_dispatcher, worker_settings
from bot.handlers.comments import REPLY_WINDOW_S, STUCK_AFTER, Allocator
from bot.handlers.handoff import HandoffReason, fetch_conversation, take_over
from bot.inbound import webhook_factory as wf
from bot.inbound.ingest import IngestStream
from bot.inbound.router import Dispatcher, HandlerContext
from bot.inbound.worker import Worker
from bot.replies.carts import VIEW_CART_PAYLOAD
from bot.runtime.clock import utcnow
from bot.runtime.redis import redis_client
from bot.runtime.redis_keys import RedisKeys
from bot.store.db import create_engine, create_schema, session_factory
from bot.store.tables import CommentLog, LiveVideo, OutboxMessage
from carts.comment_order_repository import attach_live_video
from carts.stock import expire_holds
from carts.tables import Campaign, CampaignProduct, Product, StockClaim
from config.settings import Settings
from tests.conftest import PAGE_ID, make_settings, wait_until
from tests.test_bot.stack import Stack, sends, shopper_writes

POST = f"{PAGE_ID}_2000000000001"


@dataclass
class Shop:
    settings: Settings
    stream: IngestStream
    sessions: async_sessionmaker[AsyncSession]

    async def scalar(self, stmt: Any) -> Any:
        async with self.sessions() as session:
            return (await session.execute(stmt)).scalar_one()

    async def product(self, code: str) -> Product:
        async with self.sessions() as session:
            return (await session.execute(select(Product).where(Product.code == code))).scalar_one()


@pytest.fixture
async def shop(tmp_path: Path, redis_server) -> AsyncIterator[Shop]:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, redis_server.url, worker_batch_size=5)
    engine = await asyncio.to_thread(create_engine, settings.sqlalchemy_url)
    await create_schema(engine)
    sessions = session_factory(engine)
    await seed_shop(sessions, stock=50, per_shopper_limit=3)
    redis = redis_client(redis_server.url)
    try:
        yield Shop(settings, IngestStream(redis, RedisKeys(settings.key_prefix)), sessions)
    finally:
        await redis.aclose()
        await engine.dispose()


def comment(shopper: int, text: str, comment_id: str | None = None) -> bytes:
    return wf.encode(
        wf.comment_delivery(
            page_id=PAGE_ID,
            post_id=POST,
            message=text,
            user_id=str(shopper),
            comment_id=comment_id or f"2000000000001_{shopper}",
        )
    )


class SlowStart(Dispatcher):
    """A worker that stalls on its first batch, so that the others finish later comments first."""

    def __init__(self, inner: Dispatcher, delay: float) -> None:
        super().__init__(inner.router)
        self.recorders = inner.recorders
        self.delay = delay

    async def feed(self, event: Any, ctx: HandlerContext) -> str:
        if self.delay:
            delay, self.delay = self.delay, 0.0
            await asyncio.sleep(delay)
        return await super().feed(event, ctx)


async def run_workers(shop: Shop, count: int, until: Any, slow_first: float = 0.0) -> None:
    allocator = Allocator(shop.stream, shop.sessions)
    workers = []
    for i in range(count):
        dispatcher = build_dispatcher(shop.settings)
        if i == 0 and slow_first:
            dispatcher = SlowStart(dispatcher, slow_first)
        workers.append(
            Worker(
                shop.stream,
                shop.sessions,
                dispatcher,
                worker_settings(shop.settings),
                consumer=f"w{i}",
                after_batch=allocator.run,
                in_batch=allocator.in_batch,
            )
        )
    await shop.stream.ensure_group()
    first = await shop.stream.read("w0", 5, 10)  # worker 0 takes the five earliest comments, then stalls
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        if first:
            await workers[0].process(first)
        await wait_until(until, limit=60, what="all claims decided")
    finally:
        for w in workers:
            w.stop()
        await asyncio.gather(*tasks)


async def all_claims(shop: Shop) -> list[tuple[str, str, int]]:
    """(psid, status, qty) of every claim, in arrival order."""
    async with shop.sessions() as session:
        rows = await session.execute(
            select(StockClaim.psid, StockClaim.status, StockClaim.qty).order_by(StockClaim.arrival, StockClaim.status)
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def all_decided(shop: Shop, expected: int) -> bool:
    decided = await shop.scalar(select(func.count()).select_from(StockClaim).where(StockClaim.status != "pending"))
    backlog = (await shop.stream.gauges()).backlog
    return decided >= expected and backlog == 0


async def test_200_shoppers_for_50_units_with_4_workers_the_earliest_50_win(shop: Shop) -> None:
    arrival: list[int] = []
    for shopper in range(1, 201):
        await shop.stream.append(comment(3_000_000 + shopper, "A+1"))
        arrival.append(3_000_000 + shopper)

    async def settled() -> bool:
        return await all_decided(shop, 200)

    await run_workers(shop, 4, settled, slow_first=0.5)
    product = await shop.product("A")
    assert (product.held, product.sold, product.stock) == (50, 0, 50)
    async with shop.sessions() as session:
        held = (await session.execute(select(StockClaim.psid).where(StockClaim.status == "held"))).scalars().all()
        waitlisted = await session.execute(
            select(func.count()).select_from(StockClaim).where(StockClaim.status == "waitlisted")
        )
        assert waitlisted.scalar_one() == 150
        outcomes = dict((await session.execute(select(CommentLog.author_id, CommentLog.outcome))).all())
    assert sorted(int(p) for p in held) == arrival[:50]  # the earliest 50 by arrival, not by who finished first
    assert {outcomes[str(p)] for p in arrival[:50]} == {"added"}
    assert {outcomes[str(p)] for p in arrival[50:]} == {"waitlisted"}

    # The same deliveries again (Meta retries, a reclaimed entry): nothing changes.
    for shopper in arrival:
        await shop.stream.append(comment(shopper, "A+1"))

    async def replayed() -> bool:
        return (await shop.stream.gauges()).backlog == 0

    await run_workers(shop, 4, replayed)
    assert (await shop.product("A")).held == 50
    assert await shop.scalar(select(func.count()).select_from(StockClaim)) == 200


async def test_a_claim_stock_cannot_cover_is_split_and_nobody_later_slips_past(shop: Shop) -> None:
    async with shop.sessions() as session, session.begin():
        product = (await session.execute(select(Product).where(Product.code == "A"))).scalar_one()
        product.stock = 4
    await shop.stream.append(comment(1, "A+3"))  # 3 of 4
    await shop.stream.append(comment(2, "A+3"))  # only 1 left: 1 held, 2 waitlisted
    await shop.stream.append(comment(3, "A+1"))  # later: none left for it

    async def settled() -> bool:
        return await all_decided(shop, 4)

    await run_workers(shop, 2, settled)
    rows = await all_claims(shop)
    assert rows == [
        ("1", "held", 3),
        ("2", "held", 1),
        ("2", "waitlisted", 2),
        ("3", "waitlisted", 1),
    ]
    assert (await shop.product("A")).held == 4


async def test_each_item_gets_an_outcome(shop: Shop) -> None:
    await shop.stream.append(comment(1, "A+1 B+1 D+2 好靚"))  # B has sizes and none was given; D is unknown
    await shop.stream.append(comment(2, "a+5"))  # over the limit of 3 per shopper
    await shop.stream.append(comment(3, "so pretty!"))
    await shop.stream.append(comment(4, "B+2 L"))

    async def settled() -> bool:
        return await all_decided(shop, 3)

    await run_workers(shop, 1, settled)
    async with shop.sessions() as session:
        logs = {r.author_id: r for r in (await session.execute(select(CommentLog))).scalars()}
    items = {shopper: json.loads(logs[shopper].detail or "{}").get("items") for shopper in logs}
    assert logs["1"].outcome == "added"
    assert [(i.get("code"), i["outcome"]) for i in items["1"]] == [
        ("A", "claimed"),
        ("B", "needs_variant"),
        ("D", "unknown_code"),
    ]
    assert logs["2"].outcome == "added"
    assert [(i["qty"], i["outcome"]) for i in items["2"]] == [(2, "over_limit"), (3, "claimed")]
    assert logs["3"].outcome == "not_an_order"
    assert logs["4"].outcome == "added"
    assert items["4"] == [
        {"code": "B", "qty": 2, "variant": {"size": "L"}, "product_id": 2, "name": "Linen shirt", "outcome": "claimed"}
    ]


def comment_on(post_id: str, shopper: int, text: str, comment_id: str) -> bytes:
    return wf.encode(
        wf.comment_delivery(page_id=PAGE_ID, post_id=post_id, message=text, user_id=str(shopper), comment_id=comment_id)
    )


async def test_comments_no_campaign_took_are_decided_after_a_while(shop: Shop) -> None:
    """A live's comments that came while its campaign had no video are sold once it has it; others end."""
    now = utcnow()
    async with shop.sessions() as session, session.begin():
        rose = (await session.execute(select(Product).where(Product.code == "A"))).scalar_one()
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
        session.add(CampaignProduct(campaign_id=live.id, product_id=rose.id, order_code="Rose"))  # type: ignore[arg-type]
    await shop.stream.append(comment_on(f"{PAGE_ID}_7770001", 1, "rose+2", "7770001_1"))
    await shop.stream.append(comment_on(f"{PAGE_ID}_9990001", 2, "nice post", "9990001_1"))

    async def logged() -> bool:
        count = await shop.scalar(select(func.count()).select_from(CommentLog))
        return count == 2 and (await shop.stream.gauges()).backlog == 0

    await run_workers(shop, 1, logged)

    async def outcomes() -> dict[str, tuple[str, str | None]]:
        async with shop.sessions() as session:
            rows = (await session.execute(select(CommentLog))).scalars()
            return {r.comment_id: (r.outcome, r.detail) for r in rows}

    assert {c: o for c, (o, _) in (await outcomes()).items()} == {"7770001_1": "received", "9990001_1": "received"}
    async with shop.sessions() as session, session.begin():
        await attach_live_video(session, PAGE_ID, "7770001", utcnow())  # the video is attached (again)

    sweeper = Allocator(shop.stream, shop.sessions)
    await sweeper.run(now=utcnow() + STUCK_AFTER / 2)  # not stuck yet: left alone
    assert {o for o, _ in (await outcomes()).values()} == {"received"}
    sweeper = Allocator(shop.stream, shop.sessions)  # its housekeeping runs at most once a second
    await sweeper.run(now=utcnow() + STUCK_AFTER + timedelta(seconds=1))

    decided = await outcomes()
    assert decided["7770001_1"][0] == "added"
    reason = {"reason": "no campaign sells on this post or live video"}
    assert decided["9990001_1"] == ("no_campaign", json.dumps(reason))
    assert await all_claims(shop) == [("1", "held", 2)]
    async with shop.sessions() as session:
        reply_status = (
            await session.execute(select(CommentLog.reply_status).where(CommentLog.comment_id == "7770001_1"))
        ).scalar_one()
    assert reply_status == "queued"  # its private reply is on its way


async def seed_shop(
    sessions: async_sessionmaker[AsyncSession], *, stock: int = 5, per_shopper_limit: int | None = None
) -> None:
    """Rose bouquet A (limited stock) and linen shirt B (sizes, unlimited) on a live campaign on POST."""
    now = utcnow()
    async with sessions() as session, session.begin():
        products = [
            Product(code="A", name="Rose bouquet", price=Decimal("380"), stock=stock, created_at=now, updated_at=now),
            Product(
                code="B",
                name="Linen shirt",
                price=Decimal("890"),
                stock=None,
                created_at=now,
                updated_at=now,
                variants=json.dumps({"size": ["S", "M", "L"]}),
            ),
        ]
        session.add_all(products)
        campaign = Campaign(
            key="live",
            title="Live sale",
            page_id=PAGE_ID,
            post_id=POST,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=2),
            per_shopper_limit=per_shopper_limit,
            hold_minutes=30,
            created_at=now,
            updated_at=now,
        )
        session.add(campaign)
        await session.flush()
        session.add_all(
            [
                CampaignProduct(campaign_id=campaign.id, product_id=p.id, order_code=p.code)  # type: ignore[arg-type]
                for p in products
            ]
        )


async def private_replies(stack: Stack) -> list[dict[str, Any]]:
    return [c for c in await sends(stack) if c["status"] == 200 and "comment_id" in c["body"]["recipient"]]


async def test_a_shopper_comments_and_gets_one_private_reply_with_the_cart(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    reply = await bot_stack.emulator.deliver_comment(
        PAGE_ID, "2000000000001", "3000000000201", "A+1, b+2 L", user_name="陳大文", comment_id="2000000000001_901"
    )
    assert reply["status"] == 200

    async def replied() -> bool:
        return len(await private_replies(bot_stack)) == 1

    await wait_until(replied, what="private reply")
    [call] = await private_replies(bot_stack)
    assert call["body"]["recipient"] == {"comment_id": "2000000000001_901"}
    text = call["body"]["message"]["attachment"]["payload"]["text"]
    assert text.splitlines() == [
        "Hi 陳大文!",
        "✅ A Rose bouquet ×1 added",
        "✅ B Linen shirt (L) ×2 added",
        "",
        "🛒 Cart: 3 items · HK$2,160",
    ]
    checkout, view = call["body"]["message"]["attachment"]["payload"]["buttons"]
    assert (checkout["type"], checkout["title"], view["payload"]) == ("web_url", "Checkout", VIEW_CART_PAYLOAD)
    path = "/" + checkout["url"].split("://", 1)[1].split("/", 1)[1]
    page = await bot_stack.client.get(path)
    assert page.status == 200
    assert "Linen shirt" in await page.text()  # the shopper's own cart, behind an unguessable link

    await shopper_writes(bot_stack, "3000000000201", "結帳")

    async def checkout_answers() -> list[dict[str, Any]]:
        return [
            c["body"]["message"]
            for c in await sends(bot_stack)
            if c["status"] == 200
            and c["body"]["recipient"].get("id") == "3000000000201"
            and "attachment" in c["body"]["message"]
        ]

    async def checkout_sent() -> bool:
        return len(await checkout_answers()) == 1

    await wait_until(checkout_sent, what="the checkout button in Messenger")
    [answer] = await checkout_answers()
    assert answer["attachment"]["payload"]["buttons"][0]["url"] == checkout["url"]  # the same cart's page

    async def recorded() -> bool:  # the sender records the outcome just after Meta answered
        async with bot_stack.sessions() as session:
            log = (
                await session.execute(select(CommentLog).where(CommentLog.comment_id == "2000000000001_901"))
            ).scalar_one()
        return (log.outcome, log.reply_status) == ("added", "sent")

    await wait_until(recorded, what="the comment trail shows the reply was sent")


async def test_quick_comments_of_one_shopper_get_one_reply_with_the_size_question(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    for n, text in enumerate(["A+1", "B+1"]):
        reply = await bot_stack.emulator.deliver_comment(
            PAGE_ID, "2000000000001", "3000000000202", text, user_name="Amy", comment_id=f"2000000000001_91{n}"
        )
        assert reply["status"] == 200

    async def replied() -> bool:
        return len(await private_replies(bot_stack)) >= 1

    await wait_until(replied, what="private reply")
    await asyncio.sleep(0.5)
    [call] = await private_replies(bot_stack)  # one message for both comments, not a flood
    message = call["body"]["message"]
    assert message["attachment"]["payload"]["text"].splitlines()[1:] == [
        "✅ A Rose bouquet ×1 added",
        "❓ B Linen shirt ×1: which size? Tap below",
        "",
        "🛒 Cart: 1 item · HK$380",
    ]
    assert [q["title"] for q in message["quick_replies"]] == ["S", "M", "L"]


def _text_of(message: dict[str, Any]) -> str:
    """A text message's text, or a button template's."""
    return message.get("text") or message.get("attachment", {}).get("payload", {}).get("text", "")


async def chat_texts(stack: Stack, psid: str) -> list[str]:
    return [
        _text_of(c["body"]["message"])
        for c in await sends(stack)
        if c["status"] == 200 and c["body"]["recipient"].get("id") == psid
    ]


async def chat_buttons(stack: Stack, psid: str) -> list[list[str]]:
    """The titles of each message's buttons (none for a plain text)."""
    return [
        [b["title"] for b in c["body"]["message"].get("attachment", {}).get("payload", {}).get("buttons", [])]
        for c in await sends(stack)
        if c["status"] == 200 and c["body"]["recipient"].get("id") == psid
    ]


async def test_the_shopper_picks_a_size_in_messenger_and_asks_for_the_cart(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    psid = "3000000000203"
    await bot_stack.emulator.deliver_comment(PAGE_ID, "2000000000001", psid, "A+1 B+2", comment_id="2000000000001_920")

    async def asked() -> bool:
        return len(await private_replies(bot_stack)) == 1

    await wait_until(asked, what="private reply with the size question")
    [reply] = await private_replies(bot_stack)
    size_l = next(q for q in reply["body"]["message"]["quick_replies"] if q["title"] == "L")
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "L", quick_reply=size_l["payload"])

    async def confirmed() -> bool:
        return any("added" in t for t in await chat_texts(bot_stack, psid))

    await wait_until(confirmed, what="size confirmed in Messenger")
    # The hold's time left (the campaign holds for 30 minutes) and the Checkout button: the tap opened the window.
    assert (await chat_texts(bot_stack, psid))[0].splitlines() == [
        "✅ B Linen shirt (L) ×2 added",
        "",
        "🛒 Cart: 3 items · HK$2,160",
        "⏳ Held for you: 30 min left",
    ]
    assert (await chat_buttons(bot_stack, psid))[0] == ["Checkout", "View cart"]

    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "L", quick_reply=size_l["payload"])  # tapped twice
    # Written in Chinese characters: from now on the shopper reads Chinese (bot.replies.i18n's rule).
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "購物車")

    async def carts_shown() -> bool:
        texts = await chat_texts(bot_stack, psid)
        return any("Your cart" in t for t in texts) and any("你的購物車" in t for t in texts)

    await wait_until(carts_shown, what="the cart, twice")
    texts, buttons = await chat_texts(bot_stack, psid), await chat_buttons(bot_stack, psid)
    cart = next(t for t in texts if "你的購物車" in t)
    assert cart.splitlines() == [
        "🛒 你的購物車",
        "• A Rose bouquet ×1  HK$380",
        "• B Linen shirt (L) ×2  HK$1,780",
        "總數：HK$2,160",
        "⏳ 為你保留：尚餘 30 分鐘",
    ]
    assert buttons[texts.index(cart)] == ["結帳"]
    async with bot_stack.sessions() as session:
        claims = await session.execute(select(func.count()).select_from(StockClaim).where(StockClaim.psid == psid))
        assert claims.scalar_one() == 2  # the second tap claimed nothing more


async def test_every_item_that_needs_a_size_is_asked_and_a_typed_size_completes_it(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    now = utcnow()
    async with bot_stack.sessions() as session, session.begin():
        dress = Product(
            code="C",
            name="Silk dress",
            price=Decimal("1200"),
            stock=None,
            created_at=now,
            updated_at=now,
            variants=json.dumps({"size": ["XS", "S", "M"]}),
        )
        session.add(dress)
        await session.flush()
        campaign = (await session.execute(select(Campaign).where(Campaign.key == "live"))).scalar_one()
        session.add(CampaignProduct(campaign_id=campaign.id, product_id=dress.id, order_code="C"))  # type: ignore[arg-type]
    psid = "3000000000205"
    await bot_stack.emulator.deliver_comment(PAGE_ID, "2000000000001", psid, "B+1, C+1", comment_id="2000000000001_940")
    await wait_until(lambda: _has_private_reply(bot_stack), what="private reply with the size questions")
    [reply] = await private_replies(bot_stack)
    message = reply["body"]["message"]
    assert message["attachment"]["payload"]["text"].splitlines()[1:3] == [
        "❓ B Linen shirt ×1: which size? Tap below",
        "❓ C Silk dress ×1: which size? Asked next, or type “C XS”",
    ]
    size_l = next(q for q in message["quick_replies"] if q["title"] == "L")
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "L", quick_reply=size_l["payload"])

    async def asked_next() -> bool:
        return any("which size" in t for t in await chat_texts(bot_stack, psid))

    await wait_until(asked_next, what="the question for the second item")
    question = next(
        c["body"]["message"]
        for c in await sends(bot_stack)
        if c["body"]["recipient"].get("id") == psid and "which size" in c["body"]["message"].get("text", "")
    )
    assert question["text"] == "❓ C Silk dress ×1: which size?"
    assert [q["title"] for q in question["quick_replies"]] == ["XS", "S", "M"]

    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "c m")  # typed rather than tapped

    async def both_added() -> bool:
        async with bot_stack.sessions() as session:
            rows = await session.execute(
                select(StockClaim.product_id, StockClaim.variant, StockClaim.status).where(StockClaim.psid == psid)
            )
            return sorted((p, v, s) for p, v, s in rows.all()) == [
                (2, json.dumps({"size": "L"}), "held"),
                (dress.id, json.dumps({"size": "M"}), "held"),
            ]

    await wait_until(both_added, what="both items held with their sizes")
    await wait_until(
        lambda: _texts_include(bot_stack, psid, "✅ C Silk dress (M) ×1 added"), what="the typed size confirmed"
    )


async def _texts_include(stack: Stack, psid: str, line: str) -> bool:
    return any(line in t.splitlines() for t in await chat_texts(stack, psid))


@pytest.mark.parametrize(
    "payload",
    [
        "PICK:v1:2000000000001_999:B:size=L",  # a comment the shopper never made
        "PICK:v1:2000000000001_930:B:size=XXL",  # a size the product does not have
        "PICK:v1:2000000000001_930:Z:size=L",  # an item that did not need a size
        "v1:PICK:2000000000001_999:B:size:L",  # the current format, a comment the shopper never made
        "v2:PICK:2000000000001_930:B:size:L",  # a version this server does not know
        "PICK:v0:2000000000001_930:B:size=L",
    ],  # an old payload version
)
async def test_an_old_or_forged_choice_gets_a_friendly_answer(bot_stack: Stack, payload: str) -> None:
    await seed_shop(bot_stack.sessions)
    psid = "3000000000204"
    await bot_stack.emulator.deliver_comment(PAGE_ID, "2000000000001", psid, "B+1", comment_id="2000000000001_930")
    await wait_until(lambda: _has_private_reply(bot_stack), what="private reply")
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "L", quick_reply=payload)

    async def answered() -> bool:
        return len(await chat_texts(bot_stack, psid)) >= 1

    await wait_until(answered, what="an answer")
    texts = await chat_texts(bot_stack, psid)
    assert texts == ["Sorry, that choice is no longer available. Please comment the code again."]
    async with bot_stack.sessions() as session:
        claims = await session.execute(select(func.count()).select_from(StockClaim).where(StockClaim.psid == psid))
        assert claims.scalar_one() == 0


async def _has_private_reply(stack: Stack) -> bool:
    return len(await private_replies(stack)) == 1


async def set_stock(sessions: async_sessionmaker[AsyncSession], code: str, stock: int) -> None:
    async with sessions() as session, session.begin():
        product = (await session.execute(select(Product).where(Product.code == code))).scalar_one()
        product.stock = stock


async def expire_hold_of(sessions: async_sessionmaker[AsyncSession], psid: str) -> None:
    async with sessions() as session, session.begin():
        for claim in (
            await session.execute(select(StockClaim).where(StockClaim.psid == psid, StockClaim.status == "held"))
        ).scalars():
            claim.expires_at = utcnow() - timedelta(seconds=1)


async def test_an_expired_hold_goes_to_the_waitlist_in_arrival_order(shop: Shop) -> None:
    await set_stock(shop.sessions, "A", 1)
    for shopper, text in [(1, "A+1"), (2, "A+2"), (3, "A+1")]:
        await shop.stream.append(comment(shopper, text))

    async def settled() -> bool:
        return await all_decided(shop, 3)

    await run_workers(shop, 1, settled)
    await expire_hold_of(shop.sessions, "1")
    async with shop.sessions() as session, session.begin():
        changes = await expire_holds(session, utcnow())
    assert [(c.psid, c.status, c.qty) for c in changes] == [("1", "expired", 1), ("2", "promoted", 1)]
    rows = await all_claims(shop)
    # Shopper 2 wanted 2 and gets the 1 unit freed (the rest still waits); shopper 3 is not served first.
    assert rows == [
        ("1", "expired", 1),
        ("2", "held", 1),
        ("2", "waitlisted", 1),
        ("3", "waitlisted", 1),
    ]
    product = await shop.product("A")
    assert (product.held, product.stock) == (1, 1)


async def test_a_waitlisted_shopper_who_chats_with_the_page_is_told_when_stock_frees_up(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    await set_stock(bot_stack.sessions, "A", 1)
    first, second = "3000000000211", "3000000000212"
    await bot_stack.emulator.deliver_comment(PAGE_ID, "2000000000001", first, "A+1", comment_id="2000000000001_941")
    await shopper_writes(bot_stack, second, "hi")  # the second shopper is in Messenger with the Page
    await bot_stack.emulator.deliver_comment(PAGE_ID, "2000000000001", second, "A+1", comment_id="2000000000001_942")

    async def both_answered() -> bool:
        return len(await private_replies(bot_stack)) == 2

    await wait_until(both_answered, what="both private replies")
    await expire_hold_of(bot_stack.sessions, first)

    async def told() -> bool:
        return any("Good news" in t for t in await chat_texts(bot_stack, second))

    await wait_until(told, what="the waitlisted shopper is told")
    news = next(t for t in await chat_texts(bot_stack, second) if "Good news" in t)
    assert news.splitlines()[-2:] == ["🛒 Cart: 1 item · HK$380", "⏳ Held for you: 30 min left"]


async def test_waitlist_news_waits_while_a_person_handles_the_chat(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    await set_stock(bot_stack.sessions, "A", 1)
    first, second = "3000000000221", "3000000000222"
    await bot_stack.emulator.deliver_comment(PAGE_ID, "2000000000001", first, "A+1", comment_id="2000000000001_951")
    await shopper_writes(bot_stack, second, "hi")
    await bot_stack.emulator.deliver_comment(PAGE_ID, "2000000000001", second, "A+1", comment_id="2000000000001_952")

    async def both_answered() -> bool:
        return len(await private_replies(bot_stack)) == 2

    await wait_until(both_answered, what="both private replies")
    async with bot_stack.sessions() as session, session.begin():
        conversation = await fetch_conversation(session, PAGE_ID, second)
        assert conversation is not None
        await take_over(session, conversation, HandoffReason.INBOX)
    await expire_hold_of(bot_stack.sessions, first)

    async def promoted() -> bool:
        async with bot_stack.sessions() as session:
            statuses = (await session.execute(select(StockClaim.status).where(StockClaim.psid == second))).scalars()
            return list(statuses) == ["held"]

    await wait_until(promoted, what="the waitlisted shopper's claim is held")
    async with bot_stack.sessions() as session:
        news = (
            await session.execute(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.idempotency_key.like("hold-%"))
            )
        ).scalar_one()
    assert news == 0  # the person in the chat tells them; the inbox shows the hold


async def test_a_next_live_campaign_sells_on_the_live_video_when_it_starts(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    now = utcnow()
    async with bot_stack.sessions() as session, session.begin():
        product = (await session.execute(select(Product).where(Product.code == "A"))).scalar_one()
        live = Campaign(
            key="tonight",
            title="Tonight's live",
            page_id=PAGE_ID,
            next_live=True,
            starts_at=now - timedelta(minutes=5),
            ends_at=now + timedelta(hours=3),
            hold_minutes=15,
            created_at=now,
            updated_at=now,
        )
        session.add(live)
        await session.flush()
        session.add(CampaignProduct(campaign_id=live.id, product_id=product.id, order_code="Rose"))  # type: ignore[arg-type]
    payload = {
        "object": "page",
        "entry": [
            {
                "id": PAGE_ID,
                "time": 1,
                "changes": [{"field": "live_videos", "value": {"id": "7770001", "status": "live"}}],
            }
        ],
    }
    assert (await bot_stack.emulator.deliver_raw(payload))["status"] == 200
    # A viewer's comment on the live video (its post id is the Page id and the video id).
    await bot_stack.emulator.deliver_comment(
        PAGE_ID, f"{PAGE_ID}_7770001", "3000000000221", "rose+2", comment_id="7770001_1"
    )

    async def replied() -> bool:
        return len(await private_replies(bot_stack)) == 1

    await wait_until(replied, what="the live viewer's private reply")
    [call] = await private_replies(bot_stack)
    assert call["body"]["message"]["attachment"]["payload"]["text"].splitlines()[1] == "✅ Rose Rose bouquet ×2 added"


async def test_a_size_picked_for_a_live_comment_is_claimed(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    now = utcnow()
    async with bot_stack.sessions() as session, session.begin():
        shirt = (await session.execute(select(Product).where(Product.code == "B"))).scalar_one()
        live = Campaign(
            key="tonight",
            title="Tonight's live",
            page_id=PAGE_ID,
            next_live=True,
            live_video_id="7770002",  # attached when the live started
            starts_at=now - timedelta(minutes=5),
            ends_at=now + timedelta(hours=3),
            created_at=now,
            updated_at=now,
        )
        session.add(live)
        await session.flush()
        session.add(CampaignProduct(campaign_id=live.id, product_id=shirt.id, order_code="B"))  # type: ignore[arg-type]
    psid = "3000000000222"
    await bot_stack.emulator.deliver_comment(PAGE_ID, f"{PAGE_ID}_7770002", psid, "B+1", comment_id="7770002_1")
    await wait_until(lambda: _has_private_reply(bot_stack), what="the size question")
    [reply] = await private_replies(bot_stack)
    size_m = next(q for q in reply["body"]["message"]["quick_replies"] if q["title"] == "M")
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "M", quick_reply=size_m["payload"])

    await wait_until(
        lambda: _texts_include(bot_stack, psid, "✅ B Linen shirt (M) ×1 added"), what="the size picked on the live"
    )


def edited(shopper: int, text: str | None, verb: str = "edited") -> bytes:
    return wf.encode(
        wf.comment_delivery(
            page_id=PAGE_ID,
            post_id=POST,
            message=text,
            user_id=str(shopper),
            comment_id=f"2000000000001_{shopper}",
            verb=verb,
        )
    )


async def claims_of(shop: Shop, psid: str) -> list[tuple[str, int]]:
    async with shop.sessions() as session:
        rows = await session.execute(
            select(StockClaim.status, StockClaim.qty).where(StockClaim.psid == psid).order_by(StockClaim.id)
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def test_an_edited_comment_applies_the_difference(shop: Shop) -> None:
    async def settled() -> bool:
        return await all_decided(shop, 0) and not await shop.scalar(
            select(func.count()).select_from(StockClaim).where(StockClaim.status == "pending")
        )

    await shop.stream.append(comment(1, "A+2"))
    await run_workers(shop, 1, settled)
    await shop.stream.append(edited(1, "A+1 thanks"))  # one fewer
    await run_workers(shop, 1, settled)
    assert await claims_of(shop, "1") == [("held", 1)]
    assert (await shop.product("A")).held == 1
    await shop.stream.append(edited(1, "A+3"))  # two more, in line from the edit
    await run_workers(shop, 1, settled)
    assert await claims_of(shop, "1") == [("held", 1), ("held", 2)]
    assert (await shop.product("A")).held == 3


async def test_a_removed_comment_releases_its_stock_to_the_waitlist(shop: Shop) -> None:
    await set_stock(shop.sessions, "A", 2)
    await shop.stream.append(comment(1, "A+2"))
    await shop.stream.append(comment(2, "A+1"))

    async def settled() -> bool:
        return await all_decided(shop, 2)

    await run_workers(shop, 1, settled)
    assert await claims_of(shop, "2") == [("waitlisted", 1)]
    await shop.stream.append(edited(1, None, verb="remove"))

    async def promoted() -> bool:
        return await claims_of(shop, "2") == [("held", 1)]

    await run_workers(shop, 1, promoted)
    assert await claims_of(shop, "1") == [("released", 2)]
    assert (await shop.product("A")).held == 1


async def test_an_undeliverable_private_reply_gets_one_public_pointer_per_shopper(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    psid = "3000000000231"
    await bot_stack.emulator.set_fault("blocked", count=2, path_contains="/messages")  # both private replies fail
    for n in range(2):
        await bot_stack.emulator.deliver_comment(
            PAGE_ID, "2000000000001", psid, "A+1", comment_id=f"2000000000001_95{n}"
        )
        await asyncio.sleep(REPLY_WINDOW_S + 0.5)  # apart: two separate private replies

    async def pointed() -> bool:
        calls = await bot_stack.emulator.calls("/comments")
        return any(c["method"] == "POST" and c["status"] == 200 for c in calls)

    await wait_until(pointed, what="a public reply under the comment")
    await asyncio.sleep(1.0)
    public = [c for c in await bot_stack.emulator.calls("/comments") if c["method"] == "POST"]
    assert len(public) == 1  # once per shopper per post, however many replies failed
    assert public[0]["path"].endswith("/2000000000001_950/comments")
    text = public[0]["body"].get("message") or public[0]["params"].get("message")
    assert text == "We couldn't message you privately 📩 please send our Page a message in Messenger."
    assert "HK$" not in text and "380" not in text  # no prices in public


async def test_a_comment_on_a_live_videos_post_as_meta_names_it_sells_and_its_size_pick_too(bot_stack: Stack) -> None:
    """A live video's post is `{page}_{post object}`, not `{page}_{video}` (docs/meta-platform.md, "Live
    video ids and statuses"): once its post is known, a feed comment on it finds the video's campaign, and
    so does the size the shopper picks in Messenger afterwards."""
    await seed_shop(bot_stack.sessions)
    now = utcnow()
    async with bot_stack.sessions() as session, session.begin():
        campaign = (await session.execute(select(Campaign).where(Campaign.key == "live"))).scalar_one()
        campaign.post_id, campaign.live_video_id = None, "7770002"
        session.add(campaign)
        session.add(
            LiveVideo(
                video_id="7770002",
                page_id=PAGE_ID,
                status="live",
                started_by="webhook",
                started_at=now,
                updated_at=now,
                post_id=f"{PAGE_ID}_5550001",
            )
        )
    psid = "3000000000230"
    await bot_stack.emulator.deliver_comment(PAGE_ID, f"{PAGE_ID}_5550001", psid, "B+2", comment_id="5550001_930")

    async def asked() -> bool:
        return len(await private_replies(bot_stack)) == 1

    await wait_until(asked, what="private reply with the size question")
    [reply] = await private_replies(bot_stack)
    size_l = next(q for q in reply["body"]["message"]["quick_replies"] if q["title"] == "L")
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "L", quick_reply=size_l["payload"])

    async def confirmed() -> bool:
        return any("added" in t for t in await chat_texts(bot_stack, psid))

    await wait_until(confirmed, what="size confirmed in Messenger")
    async with bot_stack.sessions() as session:
        claims = (await session.execute(select(StockClaim.variant, StockClaim.qty, StockClaim.status))).all()
    assert [(json.loads(variant), qty, status) for variant, qty, status in claims] == [({"size": "L"}, 2, "held")]
