"""The keyword FAQ and the conversation rules, as a shopper and an agent meet them through Meta (the Graph
emulator): welcome, FAQ answers, asking for a person, the bot's silence while a person handles the chat,
and the hand-back."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from bot.inbound import webhook_factory as wf
from bot.replies.payload_codec import STALE_PAYLOAD_TEXT, PayloadAction, encode_payload
from bot.runtime.clock import utcnow
from bot.services import SESSIONS
from bot.store.shop import apply_shop
from bot.store.tables import Conversation, Message, OutboxMessage, ProcessedEvent
from config.shop_file import ShopConfig, load_shop_file
from parsers.faq import FaqRule
from tests.conftest import ADMIN_TOKEN, PAGE_ID, wait_until
from tests.test_bot.stack import Stack, sends

SAMPLE = Path(__file__).parents[3] / "config" / "samples" / "demo_shop.yaml"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
INBOX_APP_ID = "263902037430900"  # Meta's Page inbox: an app other than ours


async def load_sample(stack: Stack) -> ShopConfig:
    shop = await asyncio.to_thread(load_shop_file, SAMPLE)
    async with stack.sessions() as session, session.begin():
        await apply_shop(session, shop)
    return shop


def rule(shop: ShopConfig, key: str) -> FaqRule:
    return next(r for r in shop.faq[0].rules if r.key == key)


async def received(stack: Stack, psid: str) -> list[dict[str, Any]]:
    """Every message the shopper received, in order."""
    return [
        c["body"]["message"]
        for c in await sends(stack)
        if c["status"] == 200 and c["body"]["recipient"].get("id") == psid
    ]


def text_of(message: dict[str, Any]) -> str:
    if "text" in message:
        return message["text"]
    return message["attachment"]["payload"]["text"]


async def wait_for_answers(stack: Stack, psid: str, count: int) -> list[dict[str, Any]]:
    async def enough() -> bool:
        return len(await received(stack, psid)) >= count

    await wait_until(enough, what=f"{count} messages to {psid}")
    return await received(stack, psid)


async def queued_for(stack: Stack, psid: str) -> int:
    rows = await stack.rows(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.psid == psid))
    return rows[0]


async def processed(stack: Stack, key: str) -> None:
    """Wait until the worker committed the event (and whatever it queued, in the same transaction)."""

    async def done() -> bool:
        return bool(await stack.rows(select(ProcessedEvent.key).where(ProcessedEvent.key == key)))

    await wait_until(done, what=f"event {key} processed")


async def shopper_says(stack: Stack, psid: str, text: str, quick_reply: str | None = None) -> str:
    """The shopper writes; returns the event key once the worker has handled it."""
    item = wf.message_item(page_id=PAGE_ID, psid=psid, text=text, quick_reply=quick_reply)
    reply = await stack.emulator.deliver_raw(wf.messaging_delivery(PAGE_ID, [item]))
    assert reply["status"] == 200
    key = f"mid:{item['message']['mid']}"
    await processed(stack, key)
    return key


async def agent_writes(stack: Stack, psid: str, text: str) -> None:
    """A person answers from Meta's Page inbox: Meta echoes it to us with the inbox's app id."""
    item = wf.message_item(page_id=PAGE_ID, psid=psid, text=text, echo=True, app_id=INBOX_APP_ID)
    reply = await stack.emulator.deliver_raw(wf.messaging_delivery(PAGE_ID, [item]))
    assert reply["status"] == 200
    await processed(stack, f"mid:{item['message']['mid']}")


async def admin(stack: Stack, method: str, path: str, status: int, **kwargs: Any) -> Any:
    resp = await stack.client.request(method, path, headers=ADMIN, **kwargs)
    body = await resp.json()
    assert resp.status == status, body
    return body


async def test_story_welcome_faq_person_silence_and_hand_back(bot_stack: Stack) -> None:
    shop = await load_sample(bot_stack)
    psid = "3000000000601"

    # Given a new shopper who taps Get Started: the Page's own welcome from the shop file.
    assert (await bot_stack.emulator.deliver_postback(PAGE_ID, psid, "GET_STARTED"))["status"] == 200
    (welcome,) = await wait_for_answers(bot_stack, psid, 1)
    assert welcome["text"] == shop.faq[0].welcome

    # They ask for the opening hours in Chinese: the hours rule answers, with a quick reply to the address.
    await shopper_says(bot_stack, psid, "營業時間？")
    hours = (await wait_for_answers(bot_stack, psid, 2))[1]
    assert hours["text"] == rule(shop, "hours").reply.text
    assert [q["payload"] for q in hours["quick_replies"]] == [encode_payload(PayloadAction.FAQ, "address")]

    # The quick reply answers with the address rule: a button template with the map link.
    await shopper_says(bot_stack, psid, "Address 地址", quick_reply=hours["quick_replies"][0]["payload"])
    address = (await wait_for_answers(bot_stack, psid, 3))[2]
    assert text_of(address) == rule(shop, "address").reply.text
    assert address["attachment"]["payload"]["buttons"][0]["url"].startswith("https://maps.google.com/")

    # They ask for a person: one acknowledgement (in Chinese: they write it), then the bot is silent.
    await shopper_says(bot_stack, psid, "真人")
    assert text_of((await wait_for_answers(bot_stack, psid, 4))[3]) == "好的！我們的同事會盡快在這裡回覆你。"
    before = await queued_for(bot_stack, psid)
    await shopper_says(bot_stack, psid, "運費幾錢？")
    await shopper_says(bot_stack, psid, "cart")
    assert await queued_for(bot_stack, psid) == before

    # A person answers from the Page inbox; the bot stays silent.
    await agent_writes(bot_stack, psid, "Hi, HK$30 by SF Express 順豐 HK$30")
    state = await admin(bot_stack, "GET", f"/api/conversations/{PAGE_ID}/{psid}/handoff", 200)
    assert (state["agent_handling"], state["handoff_reason"], state["window_open"]) == (True, "agent_replied", True)
    await shopper_says(bot_stack, psid, "營業時間？")
    assert await queued_for(bot_stack, psid) == before
    agent_rows = await bot_stack.rows(select(Message.text).where(Message.author == "agent"))
    assert agent_rows == ["Hi, HK$30 by SF Express 順豐 HK$30"]

    # The agent hands back: the bot answers again.
    state = await admin(bot_stack, "POST", f"/api/conversations/{PAGE_ID}/{psid}/handback", 200)
    assert (state["agent_handling"], state["handoff_reason"]) == (False, None)
    await shopper_says(bot_stack, psid, "運費幾錢？")
    # The sample's delivery answer has a text per language: this shopper writes Chinese, and reads it.
    delivery = text_of((await wait_for_answers(bot_stack, psid, 5))[4])
    assert delivery == dict(rule(shop, "delivery").reply.texts)["zh_Hant"]


async def test_the_bot_speaks_again_once_the_quiet_period_passed(bot_stack: Stack) -> None:
    shop = await load_sample(bot_stack)
    psid = "3000000000602"
    await shopper_says(bot_stack, psid, "hello")  # opens the window (the fallback answers)
    await wait_for_answers(bot_stack, psid, 1)
    await agent_writes(bot_stack, psid, "Hello! How can I help?")
    await shopper_says(bot_stack, psid, "尺碼")
    assert len(await received(bot_stack, psid)) == 1 and await queued_for(bot_stack, psid) == 1

    # The person's last message was longer ago than the quiet period.
    quiet = timedelta(seconds=bot_stack.settings.handoff_quiet_s)
    async with bot_stack.client.app[SESSIONS]() as session, session.begin():
        await session.execute(
            update(Conversation).where(Conversation.psid == psid).values(agent_active_at=utcnow() - quiet)
        )
    await shopper_says(bot_stack, psid, "尺碼")
    assert text_of((await wait_for_answers(bot_stack, psid, 2))[1]) == rule(shop, "sizes").reply.text


async def test_cart_and_checkout_stay_cart_commands_even_if_an_faq_rule_names_them(bot_stack: Stack) -> None:
    await load_sample(bot_stack)
    body = {"keywords": ["cart", "checkout", "購物車"], "reply": "FAQ about carts"}
    await admin(bot_stack, "PUT", f"/api/pages/{PAGE_ID}/faq/carts", 201, json=body)
    psid = "3000000000603"
    await shopper_says(bot_stack, psid, "cart")
    (answer,) = await wait_for_answers(bot_stack, psid, 1)
    assert text_of(answer).startswith("🛒 Your cart is empty")
    await shopper_says(bot_stack, psid, "how do I use the cart?")  # not the command: the FAQ may answer
    assert text_of((await wait_for_answers(bot_stack, psid, 2))[1]) == "FAQ about carts"


async def test_old_or_forged_payloads_get_a_friendly_answer(bot_stack: Stack) -> None:
    await load_sample(bot_stack)
    psid = "3000000000604"
    await shopper_says(bot_stack, psid, "Hours", quick_reply="v0:FAQ:hours")  # an older version
    await shopper_says(bot_stack, psid, "Refund", quick_reply="v1:REFUND_ALL")  # an action we never made
    await shopper_says(bot_stack, psid, "Gone", quick_reply=encode_payload(PayloadAction.FAQ, "deleted-rule"))
    assert (await bot_stack.emulator.deliver_postback(PAGE_ID, psid, "<script>"))["status"] == 200
    answers = await wait_for_answers(bot_stack, psid, 4)
    assert [text_of(a) for a in answers] == [STALE_PAYLOAD_TEXT] * 4


async def test_faq_admin_api(bot_stack: Stack) -> None:
    await load_sample(bot_stack)
    base = f"/api/pages/{PAGE_ID}/faq"
    faq = await admin(bot_stack, "GET", base, 200)
    assert [r["key"] for r in faq["rules"]] == ["hours", "address", "delivery", "sizes", "same-day-delivery"]

    # A new rule whose quick reply answers with an existing one; then changed.
    rule_body = {
        "keywords": ["payment", "付款方法", "fps"],
        "reply": "FPS, PayMe or cash 轉數快、PayMe 或現金",
        "quick_replies": [{"title": "Delivery 運費", "rule": "delivery"}],
    }
    created = await admin(bot_stack, "PUT", f"{base}/payment", 201, json=rule_body)
    assert created["match"] == "any" and created["priority"] == 0
    await admin(bot_stack, "PUT", f"{base}/payment", 200, json={**rule_body, "priority": 3})
    assert (await admin(bot_stack, "GET", f"{base}/payment", 200))["priority"] == 3
    tried = await admin(bot_stack, "POST", f"{base}/test", 200, json={"text": "有冇FPS?"})
    assert tried["rule"] == "payment" and tried["explanation"][0].startswith("✔ payment")

    # Bad input: 4xx with a reason, nothing changed.
    error = await admin(bot_stack, "PUT", f"{base}/payment", 400, json={**rule_body, "keywords": []})
    assert error == {"error": "keywords: must list at least one keyword"}
    error = await admin(
        bot_stack, "PUT", f"{base}/x", 400, json={**rule_body, "quick_replies": [{"title": "A", "rule": "nope"}]}
    )
    assert error == {"error": f"quick_replies[0].rule: Page {PAGE_ID} has no FAQ rule 'nope'"}
    await admin(bot_stack, "GET", f"{base}/x", 404)
    error = await admin(bot_stack, "DELETE", f"{base}/delivery", 409)
    assert error == {"error": "rule 'payment' answers with 'delivery' (quick_replies[0].rule): change it first"}
    assert (await admin(bot_stack, "GET", f"{base}/payment", 200))["priority"] == 3
    resp = await bot_stack.client.get(base)
    assert resp.status == 401

    await admin(bot_stack, "DELETE", f"{base}/payment", 200)
    await admin(bot_stack, "DELETE", f"{base}/payment", 404)

    # Loading the shop file again puts the file's rules back and changes nothing else.
    await load_sample(bot_stack)
    again = await admin(bot_stack, "GET", base, 200)
    assert again == faq


async def test_handoff_api_takes_over_and_refuses_unknown_conversations(bot_stack: Stack) -> None:
    await load_sample(bot_stack)
    psid = "3000000000605"
    await admin(bot_stack, "POST", f"/api/conversations/{PAGE_ID}/{psid}/handoff", 404)
    await shopper_says(bot_stack, psid, "hi there")
    await wait_for_answers(bot_stack, psid, 1)
    state = await admin(bot_stack, "POST", f"/api/conversations/{PAGE_ID}/{psid}/handoff", 200)
    assert (state["agent_handling"], state["handoff_reason"]) == (True, "inbox")
    await shopper_says(bot_stack, psid, "營業時間")
    assert await queued_for(bot_stack, psid) == 1


async def test_a_rule_with_a_reply_per_language_answers_each_shopper_in_theirs(bot_stack: Stack) -> None:
    await load_sample(bot_stack)
    base = f"/api/pages/{PAGE_ID}/faq"
    both = {"keywords": ["parking", "泊車"], "reply": {"en": "Parking at Mong Kok Road.", "zh_Hant": "可泊旺角道。"}}
    chinese_only = {"keywords": ["gift wrap", "包裝"], "reply": {"zh_Hant": "免費包裝。"}}
    assert (await admin(bot_stack, "PUT", f"{base}/parking", 201, json=both))["reply"] == both["reply"]
    await admin(bot_stack, "PUT", f"{base}/wrap", 201, json=chinese_only)
    error = await admin(bot_stack, "PUT", f"{base}/x", 400, json={"keywords": ["x"], "reply": {"fr": "Bonjour"}})
    assert error == {"error": "reply.fr: unknown language: en or zh_Hant"}
    error = await admin(bot_stack, "PUT", f"{base}/x", 400, json={"keywords": ["x"], "reply": {"en": " "}})
    assert error == {"error": "reply: give the answer in en, zh_Hant or both"}
    await admin(bot_stack, "GET", f"{base}/x", 404)  # nothing made of the refused ones

    chinese, english = "3000000000771", "3000000000772"
    await shopper_says(bot_stack, chinese, "中文")  # the shopper chooses Chinese
    await shopper_says(bot_stack, chinese, "可以泊車嗎？")
    await shopper_says(bot_stack, english, "Where is parking?")
    await shopper_says(bot_stack, english, "gift wrap please")
    said = [text_of(m) for m in await wait_for_answers(bot_stack, chinese, 2)]
    assert "可泊旺角道。" in said and "Parking at Mong Kok Road." not in said
    said = [text_of(m) for m in await wait_for_answers(bot_stack, english, 2)]
    assert said[-2:] == ["Parking at Mong Kok Road.", "免費包裝。"]  # no English text: the Chinese one
