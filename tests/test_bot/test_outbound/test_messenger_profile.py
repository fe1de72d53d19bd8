"""The Page's Messenger profile kept as the shop says, against the emulator: set at start (Get Started, greeting,
menu in English and Chinese), only the fields that differ sent, the shop file's section applied when it changes,
the menu's postbacks answered; and the story issue 18 asks for: a new shopper follows a member's m.me link and
the referral is credited, because the Page has Get Started.

The whole bot (web, worker, keepers) on the real Redis and SQLite, pointed at the emulator (tests/test_bot/stack.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.outbound.messenger_profile import ProfileKeeper
from bot.replies.payload_codec import PayloadAction, encode_payload
from bot.runtime.clock import utcnow
from bot.runtime.redis_keys import RedisKeys
from bot.services import GRAPH, REDIS
from bot.store.messenger_profile import save_messenger_profile
from config.shop_file import parse_shop_text
from crm_bridge.program import apply_program
from crm_bridge.tables import ReferralEdge
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack, shopper_writes
from tests.test_crm_bridge.test_referral_story import PROGRAM, code_from_card, member_id, wait_for_text

SECTION = """\
shop: {name: Test Shop, currency: HKD}
products: [{code: A, name: Dress, price: 100}]
messenger_profile:
  greeting: {default: "Welcome to Test Shop!"}
  persistent_menu:
    default: [cart, {title: Opening hours, payload: "v1:FAQ:hours"}]
"""


async def page_profile(stack: Stack) -> dict[str, Any]:
    return (await stack.emulator.messenger_profiles()).get(PAGE_ID, {})


async def profile_set(stack: Stack) -> None:
    async def done() -> bool:
        return "get_started" in await page_profile(stack)

    await wait_until(done, what="the profile keeper set the Page's Messenger profile")


async def profile_posts(stack: Stack) -> list[dict[str, Any]]:
    return [c for c in await stack.emulator.calls("/messenger_profile") if c["method"] == "POST"]


def keeper(stack: Stack) -> ProfileKeeper:
    report_key = RedisKeys(stack.settings.key_prefix).messenger_profile_report
    app = stack.client.app
    return ProfileKeeper(stack.sessions, app[GRAPH], redis=app[REDIS], report_key=report_key)


async def test_every_page_gets_get_started_a_greeting_and_the_menu_and_only_changes_are_sent(bot_stack: Stack) -> None:
    stack = bot_stack
    await profile_set(stack)
    profile = await page_profile(stack)
    assert profile["get_started"] == {"payload": "GET_STARTED"}
    assert {g["locale"] for g in profile["greeting"]} == {"default", "en_US", "zh_TW", "zh_HK"}
    menus = {m["locale"]: [i["title"] for i in m["call_to_actions"]] for m in profile["persistent_menu"]}
    assert menus["en_US"] == ["Cart", "Checkout", "My points", "Talk to a person", "中文"]
    assert menus["zh_HK"] == ["購物車", "結帳", "我的積分", "真人客服", "English"]
    # A second check finds the Page as wanted: it reads (GET) and sends nothing.
    posts = len(await profile_posts(stack))
    report = await keeper(stack).check_once()
    assert report[PAGE_ID] == {"ok": True, "set": [], "problems": []}
    assert len(await profile_posts(stack)) == posts
    health = await (await stack.client.get("/healthz")).json()
    assert health["checks"]["messenger_profile"][PAGE_ID]["ok"] is True

    # The shop file's section replaces the defaults; only the fields that differ are sent.
    config = parse_shop_text(SECTION, "shop.yaml").messenger_profile
    async with stack.sessions() as session, session.begin():
        assert await save_messenger_profile(session, config, utcnow())
    report = await keeper(stack).check_once()
    assert report[PAGE_ID]["set"] == ["greeting", "persistent_menu"]
    last = (await profile_posts(stack))[-1]
    assert set(last["body"]) - {"access_token", "appsecret_proof"} == {"greeting", "persistent_menu"}
    profile = await page_profile(stack)
    assert profile["greeting"] == [{"locale": "default", "text": "Welcome to Test Shop!"}]
    assert [i["title"] for i in profile["persistent_menu"][0]["call_to_actions"]] == ["Cart", "Opening hours"]


async def test_a_profile_meta_refuses_is_shown_on_healthz(bot_stack: Stack) -> None:
    stack = bot_stack
    await profile_set(stack)
    await stack.emulator.set_fault("server_error", count=1, path_contains="/messenger_profile")
    report = await keeper(stack).check_once()
    assert report[PAGE_ID]["ok"] is False and report[PAGE_ID]["error"]
    health = await (await stack.client.get("/healthz")).json()
    assert health["checks"]["messenger_profile"][PAGE_ID]["ok"] is False


async def test_the_menus_checkout_and_my_points_are_answered(bot_stack: Stack) -> None:
    stack = bot_stack
    async with stack.sessions() as session, session.begin():
        await apply_program(session, PROGRAM, utcnow())
    psid = "3000000000801"
    await shopper_writes(stack, psid)
    await stack.emulator.deliver_postback(PAGE_ID, psid, encode_payload(PayloadAction.POINTS))
    await wait_for_text(stack, psid, "https://m.me/testshop?ref=")  # the member card
    await stack.emulator.deliver_postback(PAGE_ID, psid, encode_payload(PayloadAction.CHECKOUT))
    await wait_for_text(stack, psid, "Your cart is empty")  # nothing to check out yet: the cart says so


async def test_a_new_shopper_following_a_members_mme_link_is_credited_because_the_page_has_get_started(
    bot_stack: Stack,
) -> None:
    stack = bot_stack
    async with stack.sessions() as session, session.begin():
        await apply_program(session, PROGRAM, utcnow())
    member, newcomer = "3000000000810", "3000000000811"
    await shopper_writes(stack, member)
    code = await code_from_card(stack, member)
    await profile_set(stack)
    # The newcomer has never written to the Page: Meta passes the ref only on the Get Started tap.
    answer = await stack.emulator.open_mme(PAGE_ID, newcomer, code)
    assert answer["opened"] == "get_started"
    await wait_for_text(stack, newcomer, "50 points are yours")
    edges = {e.member_id: e.referrer_id for e in await stack.rows(select(ReferralEdge))}
    assert edges == {await member_id(stack, newcomer): await member_id(stack, member)}
