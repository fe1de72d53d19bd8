"""Natural orders and nicknames through the whole bot (issue 20): the parser's words reach the cart, and
what it will not guess (a nickname of two products, `A幾件`) is asked in the private reply, the tap orders."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.runtime.clock import utcnow
from carts.tables import Campaign, CampaignProduct, Product, StockClaim
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack, sends

POST_ID = "2000000000001"
POST = f"{PAGE_ID}_{POST_ID}"


async def seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Cookies C, a rose bouquet E and a rose candle F (both nicknamed 玫瑰), a dress A with sizes."""
    now = utcnow()
    rows = [
        ("C", "牛油曲奇", ["曲奇"], {}),
        ("E", "Rose bouquet", ["玫瑰", "玫瑰花"], {}),
        ("F", "玫瑰香薰", ["玫瑰"], {}),
        ("A", "碎花裙", ["花裙"], {"size": ["S", "M", "L"]}),
    ]
    async with sessions() as session, session.begin():
        products = [
            Product(
                code=code,
                name=name,
                price=Decimal("100"),
                stock=20,
                nicknames=json.dumps(nicknames, ensure_ascii=False),
                variants=json.dumps(variants),
                created_at=now,
                updated_at=now,
            )
            for code, name, nicknames, variants in rows
        ]
        session.add_all(products)
        campaign = Campaign(
            key="live",
            title="Live sale",
            page_id=PAGE_ID,
            post_id=POST,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=2),
            hold_minutes=30,
            created_at=now,
            updated_at=now,
        )
        session.add(campaign)
        await session.flush()
        session.add_all(
            CampaignProduct(campaign_id=campaign.id, product_id=p.id, order_code=p.code)  # type: ignore[arg-type]
            for p in products
        )


async def replies_to(stack: Stack, comment_id: str) -> list[dict[str, Any]]:
    return [
        c["body"]
        for c in await sends(stack)
        if c["status"] == 200 and c["body"].get("recipient", {}).get("comment_id") == comment_id
    ]


async def chat(stack: Stack, psid: str) -> list[dict[str, Any]]:
    return [
        c["body"]["message"]
        for c in await sends(stack)
        if c["status"] == 200 and c["body"].get("recipient", {}).get("id") == psid
    ]


def text_of(message: dict[str, Any]) -> str:
    return message.get("text") or message["attachment"]["payload"]["text"]


async def claims(stack: Stack, psid: str) -> list[tuple[str, int, str]]:
    async with stack.sessions() as session:
        rows = await session.execute(
            select(Product.code, StockClaim.qty, StockClaim.variant)
            .join(Product, Product.id == StockClaim.product_id)
            .where(StockClaim.psid == psid)
            .order_by(StockClaim.id)
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def comment_and_reply(stack: Stack, psid: str, text: str, number: int) -> dict[str, Any]:
    comment_id = f"{POST_ID}_{number}"
    await stack.emulator.deliver_comment(PAGE_ID, POST_ID, psid, text, comment_id=comment_id)

    async def replied() -> bool:
        return bool(await replies_to(stack, comment_id))

    await wait_until(replied, what=f"the private reply to {text!r}")
    (reply,) = await replies_to(stack, comment_id)
    return reply["message"]


async def test_a_natural_cantonese_order_with_a_nickname_is_claimed(bot_stack: Stack) -> None:
    await seed(bot_stack.sessions)
    psid = "3000000000301"
    message = await comment_and_reply(bot_stack, psid, "我要兩盒曲奇 唔該", 301)
    assert "✅ 已加入 C 牛油曲奇 ×2" in text_of(message)  # written in Chinese: answered in Chinese
    assert await claims(bot_stack, psid) == [("C", 2, "")]


async def test_a_nickname_of_two_products_is_asked_and_the_tap_orders(bot_stack: Stack) -> None:
    await seed(bot_stack.sessions)
    psid = "3000000000302"
    message = await comment_and_reply(bot_stack, psid, "玫瑰兩枝", 302)
    assert "❔「玫瑰」×2：你想要哪一款？請按下面選擇" in text_of(message)
    titles = [q["title"] for q in message["quick_replies"]]
    assert titles == ["E Rose bouquet", "F 玫瑰香薰"]
    assert await claims(bot_stack, psid) == []  # never guessed

    candle = message["quick_replies"][1]
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, candle["title"], quick_reply=candle["payload"])

    async def claimed() -> bool:
        return bool(await claims(bot_stack, psid))

    await wait_until(claimed, what="the tapped product claimed")
    assert await claims(bot_stack, psid) == [("F", 2, "")]

    async def confirmed() -> bool:
        # The chat's language is the conversation's (bot.outbound.shopper_locale), as after a size tap.
        return any("✅ F 玫瑰香薰 ×2 added" in text_of(m) for m in await chat(bot_stack, psid))

    await wait_until(confirmed, what="the claim confirmed in the chat")
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, candle["title"], quick_reply=candle["payload"])
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "購物車")

    async def cart_shown() -> bool:
        return any("你的購物車" in text_of(m) for m in await chat(bot_stack, psid))

    await wait_until(cart_shown, what="the cart")
    assert await claims(bot_stack, psid) == [("F", 2, "")]  # a second tap claims nothing more


async def test_an_unreadable_quantity_is_asked_and_a_product_with_sizes_asks_the_size_next(bot_stack: Stack) -> None:
    await seed(bot_stack.sessions)
    psid = "3000000000303"
    message = await comment_and_reply(bot_stack, psid, "花裙幾件?", 303)
    assert "❔ A 碎花裙：你想要幾件？請按下面選擇" in text_of(message)
    assert [q["title"] for q in message["quick_replies"]] == ["1", "2", "3"]
    two = message["quick_replies"][1]
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "2", quick_reply=two["payload"])

    async def asked_size() -> bool:
        return any(m.get("quick_replies") for m in await chat(bot_stack, psid))

    await wait_until(asked_size, what="the size question")
    question = next(m for m in await chat(bot_stack, psid) if m.get("quick_replies"))
    assert "A 碎花裙 ×2" in text_of(question)
    size_m = next(q for q in question["quick_replies"] if q["title"] == "M")
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "M", quick_reply=size_m["payload"])

    async def claimed() -> bool:
        return bool(await claims(bot_stack, psid))

    await wait_until(claimed, what="the dress claimed in size M")
    assert await claims(bot_stack, psid) == [("A", 2, '{"size": "M"}')]


async def test_a_forged_or_wrong_order_tap_changes_nothing(bot_stack: Stack) -> None:
    await seed(bot_stack.sessions)
    psid = "3000000000304"
    message = await comment_and_reply(bot_stack, psid, "玫瑰+1", 304)
    payload = message["quick_replies"][0]["payload"]
    # Another product than the two asked about, and another shopper tapping this shopper's choice.
    forged = payload.replace(":E:", ":C:")
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "C", quick_reply=forged)
    await bot_stack.emulator.deliver_message(PAGE_ID, "3000000000399", "E", quick_reply=payload)

    async def answered() -> bool:
        return len(await chat(bot_stack, psid)) >= 1 and len(await chat(bot_stack, "3000000000399")) >= 1

    await wait_until(answered, what="both taps answered")
    assert (await chat(bot_stack, psid))[0]["text"] == (await chat(bot_stack, "3000000000399"))[0]["text"]
    assert await claims(bot_stack, psid) == [] and await claims(bot_stack, "3000000000399") == []
