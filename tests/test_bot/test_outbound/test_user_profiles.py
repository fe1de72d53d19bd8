"""Shoppers' names and pictures from Meta's User Profile API: the emulator answers as Meta does (only for a
person who wrote to the Page), the filler keeps them on the conversation beside the request path and
refreshes them after a week, a failure blocks nothing, and the inbox shows them (escaped; the picture only
as the URL Meta gave).

The whole bot on the real Redis and SQLite, pointed at the emulator (tests/test_bot/stack.py).
"""

from __future__ import annotations

import json
from datetime import timedelta

import aiohttp
from sqlalchemy import select

from bot.outbound.graph import GraphClient
from bot.outbound.user_profiles import UserProfileFiller, profile_name, safe_picture
from bot.runtime.clock import utcnow
from bot.services import GRAPH
from bot.store.tables import Conversation
from tests.conftest import DATA, PAGE_ID, wait_until
from tests.test_bot.stack import TOKEN, Stack, shopper_writes
from tests.test_bot.test_emulator.test_subscriptions import assert_shape, sample
from tests.test_bot.test_inbox.test_inbox import sign_in, users

PICTURE = "https://platform-lookaside.fbsbx.com/platform/profilepic/?psid=3000000000950&width=64"


async def conversation(stack: Stack, psid: str) -> Conversation:
    [row] = await stack.rows(select(Conversation).where(Conversation.psid == psid))
    return row


async def named(stack: Stack, psid: str, name: str) -> None:
    async def done() -> bool:
        return (await conversation(stack, psid)).name == name

    await wait_until(done, what=f"{psid} named {name!r}")


async def test_meta_gives_a_profile_only_to_a_page_the_person_wrote_to(stack: Stack) -> None:
    psid = "3000000000951"
    url = f"{stack.emulator.base_url}v26.0/{psid}"
    query = {"fields": "first_name,last_name,profile_pic", "access_token": TOKEN}
    async with aiohttp.ClientSession() as http:
        async with http.get(url, params=query) as resp:
            refused = await resp.json()
        expected = json.loads((DATA / "meta" / "error_user_profile_not_available.json").read_text())["error"]
        assert resp.status == 400
        assert (refused["error"]["code"], refused["error"]["error_subcode"]) == (100, 2018218)
        assert refused["error"]["message"] == expected["message"]
        await stack.emulator.describe_person(PAGE_ID, psid, "Peter", "Chang", PICTURE)
        await shopper_writes(stack, psid)
        async with http.get(url, params=query) as resp:
            answer = await resp.json()
    assert resp.status == 200
    assert_shape(answer, sample("user_profile.json"))
    assert answer == {"first_name": "Peter", "last_name": "Chang", "profile_pic": PICTURE, "id": psid}


async def test_a_shopper_who_only_messages_gets_their_name_and_picture_in_the_inbox(bot_stack: Stack) -> None:
    stack = bot_stack
    psid = "3000000000950"
    await stack.emulator.describe_person(PAGE_ID, psid, "<b>Mei</b>", "陳", PICTURE)
    await shopper_writes(stack, psid, "hi")
    filler = UserProfileFiller(stack.sessions, stack.client.app[GRAPH])
    await filler.fill_once()  # or the background filler got there first: either way
    await named(stack, psid, "<b>Mei</b> 陳")
    row = await conversation(stack, psid)
    assert row.profile_pic == PICTURE and row.profile_fetched_at is not None
    await users(stack)
    await sign_in(stack, "owner")
    listing = await (await stack.client.get("/inbox")).text()
    assert "&lt;b&gt;Mei&lt;/b&gt; 陳" in listing and "<b>Mei</b>" not in listing  # escaped
    assert f'src="{PICTURE.replace("&", "&amp;")}"' in listing
    assert "Shopper …0950" not in listing
    page = await (await stack.client.get(f"/inbox/c/{row.id}")).text()
    assert page.count('class="avatar"') >= 1 and "&lt;b&gt;Mei&lt;/b&gt; 陳" in page
    panel = await (await stack.client.get(f"/inbox/c/{row.id}/part/panel")).text()
    assert 'class="avatar"' in panel and "&lt;b&gt;Mei&lt;/b&gt; 陳" in panel

    # A week later the profile is asked again, and a new name replaces the old.
    await stack.emulator.describe_person(PAGE_ID, psid, "Mei", "Chan", PICTURE)
    assert await filler.fill_once(utcnow() + timedelta(days=3)) == 0, "not due yet"
    assert await filler.fill_once(utcnow() + timedelta(days=8)) == 1
    assert (await conversation(stack, psid)).name == "Mei Chan"


async def test_a_failed_fetch_blocks_nothing_and_is_tried_again(bot_stack: Stack) -> None:
    stack = bot_stack
    psid = "3000000000952"
    await stack.emulator.describe_person(PAGE_ID, psid, "Kit")
    await stack.emulator.set_fault("server_error", count=1, path_contains=f"/{psid}")
    await shopper_writes(stack, psid, "hi")  # the webhook is handled at once: nothing waits on the profile
    graph: GraphClient = stack.client.app[GRAPH]
    filler = UserProfileFiller(stack.sessions, graph, retry_after=timedelta(minutes=10))
    # Whichever filler (this one or the background's) meets the fault keeps the conversation due; this one
    # tries again once its wait is over.
    await filler.fill_once()
    await filler.fill_once(utcnow() + timedelta(minutes=11))
    await named(stack, psid, "Kit")
    statuses = [c["status"] for c in await stack.emulator.calls(f"/{psid}") if c["method"] == "GET"]
    assert statuses[0] == 500 and statuses[-1] == 200, statuses


def test_names_and_pictures_are_taken_only_as_safe_text_and_https_urls() -> None:
    assert profile_name({"first_name": " Mei ", "last_name": "陳"}) == "Mei 陳"
    assert profile_name({"name": "Only Name"}) == "Only Name"
    assert profile_name({}) is None
    assert profile_name({"first_name": "x" * 300}) == "x" * 200
    assert safe_picture(PICTURE) == PICTURE
    for bad in (
        "http://example.com/p.jpg",
        "javascript:alert(1)",
        'https://x/"onerror=alert(1)',
        None,
        5,
        "https://a b",
    ):
        assert safe_picture(bad) is None, bad
