"""The emulator plays Instagram as Meta documents it (bot/emulator/instagram.py), each answer checked against a
sample of Meta's documentation in tests/data/meta/: its webhooks (`object: "instagram"`, comments, live
comments, Direct messages, echoes inside `messages`), private replies to Instagram comments with their own
rules, Direct messages with Instagram's outside-window code, and public replies under a comment."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from bot.emulator.app import GraphEmulator
from bot.emulator.config import EmulatedPage
from bot.emulator.control import EmulatorError
from tests.conftest import DATA, PAGE_ID
from tests.test_bot.test_emulator.conftest import (
    DAY,
    TOKEN,
    Receiver,
    StartEmulator,
    error_of,
    graph,
    send,
)

IG_ACCOUNT = "17841405309211844"
MEDIA = "17918195224117851"
LIVE = "17918195224117852"
IGSID = "1253947108412238"


def sample(name: str) -> dict[str, Any]:
    return json.loads((DATA / "meta" / name).read_text())


def shape(value: Any) -> Any:
    """The keys and value types of a JSON value, recursively (what a sample and an answer must share)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if k != "_source"}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


@pytest.fixture
async def ig(start_emulator: StartEmulator) -> GraphEmulator:
    page = EmulatedPage(TOKEN, "PlusOne Demo Shop", "plusonedemo", instagram_account_id=IG_ACCOUNT)
    return await start_emulator(pages={PAGE_ID: page})


async def test_a_comment_is_delivered_as_metas_comments_webhook_and_its_private_reply_as_documented(
    ig: GraphEmulator, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    await ig.instagram_media(IG_ACCOUNT, MEDIA)
    played = await ig.instagram_comment(IG_ACCOUNT, MEDIA, IGSID, "A+1", username="ann.chan")
    assert played["status"] == 200
    [delivered] = receiver.payloads()
    documented = sample("instagram_comments_webhook.json")
    assert shape(delivered) == shape(documented)
    value = delivered["entry"][0]["changes"][0]["value"]
    assert delivered["entry"][0]["id"] == IG_ACCOUNT and value["from"] == {"id": IGSID, "username": "ann.chan"}

    # The private reply: the Send API's answer, as in Meta's sample.
    reply = sample("instagram_private_reply_send.json")
    status, answer = await send(http, ig, {"comment_id": played["comment_id"]}, message=reply["request"]["message"])
    assert status == 200 and shape(answer) == shape(reply["response"]) and answer["recipient_id"] == IGSID
    # Its echo comes back as Instagram sends echoes: inside messages, is_echo, from the account.
    await _until(lambda: len(receiver.payloads()) == 2)
    echo = receiver.payloads()[1]
    item = echo["entry"][0]["messaging"][0]
    assert echo["object"] == "instagram" and echo["entry"][0]["id"] == IG_ACCOUNT
    assert item["sender"]["id"] == IG_ACCOUNT and item["recipient"]["id"] == IGSID and item["message"]["is_echo"]

    # One private reply per comment: the Send API's 10900, as documented.
    status, answer = await send(http, ig, {"comment_id": played["comment_id"]})
    documented_error = sample("instagram_errors.json")["already_replied"]
    assert status == 400 and error_of(answer) == (documented_error["error"]["code"], None)


async def test_a_comment_older_than_seven_days_gets_instagrams_outside_window_refusal(
    ig: GraphEmulator, http: aiohttp.ClientSession
) -> None:
    await ig.instagram_media(IG_ACCOUNT, MEDIA)
    played = await ig.instagram_comment(IG_ACCOUNT, MEDIA, IGSID, "A+1")
    await ig.set_clock_offset(7 * DAY + 60)
    status, answer = await send(http, ig, {"comment_id": played["comment_id"]})
    documented = sample("instagram_errors.json")["outside_window"]["error"]
    assert status == 400 and error_of(answer) == (documented["code"], documented["error_subcode"])


async def test_a_live_comment_comes_only_while_the_live_is_on_and_its_reply_only_then(
    ig: GraphEmulator, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    await ig.instagram_media(IG_ACCOUNT, LIVE, media_product_type="LIVE")
    first = await ig.instagram_comment(IG_ACCOUNT, LIVE, IGSID, "B+1 L")
    second = await ig.instagram_comment(IG_ACCOUNT, LIVE, "1253947108412239", "A+1")
    assert shape(receiver.payloads()[0]) == shape(sample("instagram_live_comments_webhook.json"))
    assert receiver.payloads()[0]["entry"][0]["changes"][0]["field"] == "live_comments"
    status, _ = await send(http, ig, {"comment_id": first["comment_id"]})
    assert status == 200  # during the live

    await ig.instagram_media(IG_ACCOUNT, LIVE, media_product_type="LIVE", live=False)  # the live ends
    status, answer = await send(http, ig, {"comment_id": second["comment_id"]})
    documented = sample("instagram_errors.json")["outside_window"]["error"]
    assert status == 400 and error_of(answer) == (documented["code"], documented["error_subcode"])
    # And Meta sends no live_comments for a live that is not on.
    with pytest.raises(EmulatorError, match="not on"):
        await ig.instagram_comment(IG_ACCOUNT, LIVE, IGSID, "A+1")


async def test_about_750_private_replies_an_hour_then_instagrams_throttle(
    start_emulator: StartEmulator, http: aiohttp.ClientSession
) -> None:
    page = EmulatedPage(TOKEN, "PlusOne Demo Shop", "plusonedemo", instagram_account_id=IG_ACCOUNT)
    # Well under Meta's 300 a second, and no echoes: only the hourly limit of private replies is at play.
    ig = await start_emulator(pages={PAGE_ID: page}, messages_per_second=100_000, send_echoes=False)
    await ig.instagram_media(IG_ACCOUNT, MEDIA)
    comments = [
        (await ig.instagram_comment(IG_ACCOUNT, MEDIA, f"12539471084{n:05d}", "A+1"))["comment_id"] for n in range(751)
    ]
    statuses = []
    for comment_id in comments:
        status, answer = await send(http, ig, {"comment_id": comment_id})
        statuses.append(status)
    assert statuses[:750] == [200] * 750
    documented = sample("instagram_errors.json")["instagram_throttled"]["error"]
    assert statuses[750] == 400 and error_of(answer)[0] == documented["code"]


async def test_a_direct_message_opens_the_window_and_outside_it_meta_answers_2534022(
    ig: GraphEmulator, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    played = await ig.instagram_message(IG_ACCOUNT, IGSID, "營業時間？")
    assert played["status"] == 200
    assert shape(receiver.payloads()[0]) == shape(sample("instagram_message_webhook.json"))
    status, answer = await send(http, ig, {"id": IGSID}, message={"text": "10:00-19:00"})
    assert status == 200 and answer["recipient_id"] == IGSID
    await ig.set_clock_offset(24 * 3600 + 60)
    status, answer = await send(http, ig, {"id": IGSID}, message={"text": "still there?"})
    documented = sample("instagram_errors.json")["outside_window"]["error"]
    assert status == 400 and error_of(answer) == (documented["code"], documented["error_subcode"])


async def test_the_public_reply_goes_under_the_comment_through_replies(
    ig: GraphEmulator, http: aiohttp.ClientSession
) -> None:
    await ig.instagram_media(IG_ACCOUNT, MEDIA)
    played = await ig.instagram_comment(IG_ACCOUNT, MEDIA, IGSID, "A+1")
    status, answer = await graph(
        http, ig, "POST", f"{played['comment_id']}/replies", form={"message": "Check your DMs"}
    )
    assert status == 200 and answer["id"].isdigit()
    status, answer = await graph(http, ig, "POST", f"{played['comment_id']}/replies", form={})
    assert status == 400 and error_of(answer)[0] == 100


async def _until(predicate: Any, limit: float = 60.0) -> None:
    for _ in range(int(limit / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met")
