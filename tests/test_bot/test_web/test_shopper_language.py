"""Story tests of the shopper's language (bot.replies.i18n's rule): their choice beats what they write, which
beats the shop's language; every reply, the order news and the checkout page follow it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.replies.payload_codec import PayloadAction, encode_payload
from bot.runtime.clock import utcnow
from bot.store.tables import Conversation
from carts.payments import save_shop_payments
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack, sends
from tests.test_bot.test_handlers.test_comments import chat_texts, private_replies, seed_shop
from tests.test_bot.test_web.test_checkout import ADMIN, VALID, comment_and_wait, form_of, post

CHINESE = encode_payload(PayloadAction.LANGUAGE, "zh_Hant")


async def answers(stack: Stack, psid: str, count: int) -> list[str]:
    async def arrived() -> bool:
        return len(await chat_texts(stack, psid)) >= count

    await wait_until(arrived, what=f"{count} answers to {psid}")
    return await chat_texts(stack, psid)


async def kept_locale(stack: Stack, psid: str) -> tuple[Any, Any]:
    [row] = await stack.rows(select(Conversation).where(Conversation.psid == psid))
    return row.locale, row.locale_source


async def test_a_shopper_who_chose_chinese_gets_chinese_replies_order_news_and_pages(bot_stack: Stack) -> None:
    # given: an English shop (no language in the shop file) and a shopper who writes in Latin letters
    await seed_shop(bot_stack.sessions)
    psid = "3000000000701"
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "hi")
    [fallback] = await answers(bot_stack, psid, 1)
    assert fallback == "Thanks for your message! Our team will reply soon."
    offered = [c["body"]["message"]["quick_replies"] for c in await sends(bot_stack)][-1]
    assert [q["title"] for q in offered] == ["中文", "English"]

    # when: they tap 中文
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "中文", quick_reply=offered[0]["payload"])
    assert (await answers(bot_stack, psid, 2))[1] == "好的，之後我會用中文回覆你。"
    assert await kept_locale(bot_stack, psid) == ("zh_Hant", 3)

    # then: the private reply to their comment is in Chinese, with its money in Babel's format
    token = await comment_and_wait(bot_stack, "A+1", psid=psid, number=71)

    async def replied() -> bool:
        return len(await private_replies(bot_stack)) == 1

    await wait_until(replied, what="the private reply")
    [reply] = await private_replies(bot_stack)
    payload = reply["body"]["message"]["attachment"]["payload"]
    assert payload["text"].splitlines()[1:] == ["✅ 已加入 A Rose bouquet ×1", "", "🛒 購物車：1 件 · HK$380"]
    assert [b["title"] for b in payload["buttons"]] == ["結帳", "購物車"]

    # and the `cart` command they type in English is answered in Chinese
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "cart")
    cart = (await answers(bot_stack, psid, 3))[2]
    assert cart.splitlines()[0] == "🛒 你的購物車" and "總數：HK$380" in cart

    # and the checkout page (no ?lang=) is in Chinese; ?lang=en still wins on the page
    page = await (await bot_stack.client.get(f"/checkout/{token}")).text()
    assert '<html lang="zh-Hant">' in page and "確認訂單" in page and "Confirm order" not in page
    english = await (await bot_stack.client.get(f"/checkout/{token}?lang=en")).text()
    assert "Confirm order" in english and "確認訂單" not in english
    status, refused = await post(bot_stack, token, {**form_of(page), "name": "陳", "phone": "12"})
    assert status == 400 and "請輸入電話號碼" in refused and "Please enter" not in refused

    # and the order news: the summary and "payment received"
    status, confirmed = await post(bot_stack, token, {**VALID, **form_of(page)})
    assert status == 200 and "訂單 PO-000001 已確認" in confirmed
    summary = (await answers(bot_stack, psid, 4))[3]
    assert summary.startswith("🧾 訂單 PO-000001 已確認。")
    response = await bot_stack.client.post("/api/orders/PO-000001/paid", headers=ADMIN, json={"reference": "FPS-1"})
    assert response.status == 200
    assert (await answers(bot_stack, psid, 5))[4] == "✅ 已收到付款：訂單 PO-000001 已付款。多謝！"


async def test_a_shopper_writing_english_in_a_chinese_shop_gets_english_once_they_choose_it(bot_stack: Stack) -> None:
    # given: a Chinese shop
    async with bot_stack.sessions() as session, session.begin():
        await save_shop_payments(session, (), "zh_Hant", utcnow())
    psid = "3000000000702"
    # when: they write in English: Latin letters say nothing, so the shop's language answers
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "cart")
    assert (await answers(bot_stack, psid, 1))[0].startswith("🛒 你的購物車是空的")
    assert await kept_locale(bot_stack, psid) == (None, None)
    # when: they type English: from then on, English
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "English")
    assert (await answers(bot_stack, psid, 2))[1] == "OK, I will write to you in English from now on."
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "購物車")
    # then: their choice beats the Chinese characters they wrote
    assert (await answers(bot_stack, psid, 3))[2].startswith("🛒 Your cart is empty")
    assert await kept_locale(bot_stack, psid) == ("en", 3)
    # and a tap on 中文 changes their mind again
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "中文", quick_reply=CHINESE)
    assert (await answers(bot_stack, psid, 4))[3] == "好的，之後我會用中文回覆你。"
    # and the Messenger menu's switch (a postback) back to English
    await bot_stack.emulator.deliver_postback(PAGE_ID, psid, encode_payload(PayloadAction.LANGUAGE, "en"))
    assert (await answers(bot_stack, psid, 5))[4] == "OK, I will write to you in English from now on."


async def test_a_shopper_who_writes_chinese_is_answered_in_chinese(bot_stack: Stack) -> None:
    psid = "3000000000703"  # an English shop
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "我想問下")
    assert (await answers(bot_stack, psid, 1))[0] == "多謝你的訊息！我們會盡快回覆。"
    assert await kept_locale(bot_stack, psid) == ("zh_Hant", 1)


async def test_a_comment_in_chinese_characters_gets_its_private_reply_in_chinese(bot_stack: Stack) -> None:
    # An English shop; a shopper who never wrote to the Page comments in Chinese: the reply, and the public
    # note it would leave, follow the comment's script. Another comments in Latin letters: English.
    await seed_shop(bot_stack.sessions)
    await bot_stack.emulator.deliver_comment(
        PAGE_ID, "2000000000001", "3000000000704", "A+1 唔該", comment_id="2000000000001_704"
    )
    await bot_stack.emulator.deliver_comment(
        PAGE_ID, "2000000000001", "3000000000705", "A+1", comment_id="2000000000001_705"
    )

    async def replied() -> bool:
        return len(await private_replies(bot_stack)) == 2

    await wait_until(replied, what="both private replies")
    texts = {
        c["body"]["recipient"]["comment_id"]: c["body"]["message"]["attachment"]["payload"]["text"]
        for c in await private_replies(bot_stack)
    }
    assert "✅ 已加入 A Rose bouquet ×1" in texts["2000000000001_704"].splitlines()
    assert "✅ A Rose bouquet ×1 added" in texts["2000000000001_705"].splitlines()
