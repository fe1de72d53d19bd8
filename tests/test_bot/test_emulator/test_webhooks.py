"""The webhook player: signed echoes with metadata, retries until our server accepts, the player's story.

Each test starts a real emulator on a free port (fixtures in conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import pytest

from bot.emulator.control import EmulatorError
from bot.inbound.signature import verify_signature
from tests.conftest import APP_SECRET, DATA, PAGE_ID
from tests.test_bot.test_emulator.conftest import APP_ID, error_of, send


async def wait_for(predicate: Callable[[], bool], limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_echo_is_delivered_signed_with_metadata(emulator, http, receiver) -> None:
    await emulator.open_window(PAGE_ID, "7501")
    message = {"text": "Your cart: A x1", "metadata": "outbox:42"}
    status, body = await send(http, emulator, {"id": "7501"}, message=message)
    assert status == 200
    await wait_for(lambda: len(receiver.received) == 1)
    raw, signature = receiver.received[0]
    assert verify_signature(raw, signature, APP_SECRET)
    item = json.loads(raw)["entry"][0]["messaging"][0]
    assert item["sender"] == {"id": PAGE_ID} and item["recipient"] == {"id": "7501"}
    assert item["message"] == {
        "mid": body["message_id"],
        "text": "Your cart: A x1",
        "is_echo": True,
        "app_id": int(APP_ID),
        "metadata": "outbox:42",
    }


async def test_echo_delivery_is_retried_until_the_server_accepts(emulator, http, receiver) -> None:
    receiver.statuses[:] = [500, 503]
    await emulator.open_window(PAGE_ID, "7502")
    assert (await send(http, emulator, {"id": "7502"}))[0] == 200
    await wait_for(lambda: len(receiver.received) == 3)
    [delivery] = await emulator.deliveries(kind="echo")
    assert delivery["attempts"] == 3 and delivery["status"] == 200
    assert len({body for body, _ in receiver.received}) == 1, "the same delivery each time"


async def test_no_echoes_when_switched_off(start_emulator, http, receiver) -> None:
    emulator = await start_emulator(send_echoes=False)
    await emulator.open_window(PAGE_ID, "7503")
    assert (await send(http, emulator, {"id": "7503"}))[0] == 200
    await asyncio.sleep(0.05)
    assert receiver.received == []


async def test_webhook_player_story(emulator, http, receiver) -> None:
    # Shopper comments; the server replies privately; the shopper answers; the server may now message.
    played = await emulator.deliver_comment(PAGE_ID, "2000000000001", "3000000000001", "A+1", user_name="Chan")
    assert played["status"] == 200
    raw, signature = receiver.received[-1]
    assert verify_signature(raw, signature, APP_SECRET)
    value = json.loads(raw)["entry"][0]["changes"][0]["value"]
    assert value["comment_id"] == played["comment_id"] and value["message"] == "A+1"
    assert value["from"] == {"id": "3000000000001", "name": "Chan"} and played["payload"] == json.loads(raw)

    assert (await send(http, emulator, {"comment_id": played["comment_id"]}))[0] == 200
    assert error_of((await send(http, emulator, {"id": "3000000000001"}))[1]) == (10, 2018278)
    answered = await emulator.deliver_message(PAGE_ID, "3000000000001", "yes please", quick_reply="CONFIRM")
    assert answered["status"] == 200 and answered["mid"]
    assert (await send(http, emulator, {"id": "3000000000001"}))[0] == 200

    assert (await emulator.deliver_postback(PAGE_ID, "3000000000002", "GET_STARTED", ref="live1"))["status"] == 200
    assert (await emulator.deliver_referral(PAGE_ID, "3000000000003", "live1"))["status"] == 200
    for psid in ("3000000000002", "3000000000003"):
        assert (await send(http, emulator, {"id": psid}))[0] == 200, psid
    played_kinds = [d["kind"] for d in await emulator.deliveries() if d["kind"] != "echo"]
    assert played_kinds == ["comment", "message", "postback", "referral"]
    await wait_for(lambda: sum(b'"is_echo":true' in body for body, _ in receiver.received) == 4)


async def test_webhook_player_raw_and_removed_comments(emulator, http, receiver) -> None:
    sample = json.loads((DATA / "meta" / "messenger_text.json").read_text())
    played = await emulator.deliver_raw(sample)
    assert played["status"] == 200 and receiver.payloads()[-1] == sample
    await emulator.deliver_comment(PAGE_ID, "2000000000001", "3000000000001", "A+1", comment_id="2000000000001_5")
    await emulator.deliver_comment(
        PAGE_ID, "2000000000001", "3000000000001", "", comment_id="2000000000001_5", verb="remove"
    )
    assert error_of((await send(http, emulator, {"comment_id": "2000000000001_5"}))[1]) == (100, 2018292)


async def test_player_reports_a_server_it_cannot_reach_and_needs_a_url(start_emulator) -> None:
    unreachable = await start_emulator(webhook_url="http://127.0.0.1:9/webhook")
    played = await unreachable.deliver_message(PAGE_ID, "3000000000001", "hi")
    assert played["status"] is None and played["error"]
    without = await start_emulator(webhook_url=None)
    with pytest.raises(EmulatorError, match="webhook_url"):
        await without.deliver_message(PAGE_ID, "3000000000001", "hi")
