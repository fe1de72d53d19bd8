"""The emulator's Send API: Meta's success shape, the messaging windows by the emulator's clock, retired tags,
parameter errors, blocked shoppers, and Meta's own request samples.

Each test starts a real emulator on a free port (fixtures in conftest.py).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.conftest import DATA, PAGE_ID
from tests.test_bot.test_emulator.conftest import DAY, HOUR, TOKEN, V, error_of, graph, send


async def test_send_message_answers_meta_shape_and_records_the_call(emulator, http) -> None:
    await emulator.open_window(PAGE_ID, "7001")
    status, body = await send(http, emulator, {"id": "7001"}, messaging_type="RESPONSE")
    assert status == 200 and set(body) == {"recipient_id", "message_id"}
    assert body["recipient_id"] == "7001" and body["message_id"].startswith("m_")
    _, again = await send(http, emulator, {"id": "7001"})
    assert again["message_id"] != body["message_id"]

    calls = await emulator.calls(path_contains="/messages")
    assert [c["seq"] for c in calls] == sorted(c["seq"] for c in calls) and len(calls) == 2
    first = calls[0]
    assert first["method"] == "POST" and first["path"] == f"/{V}/{PAGE_ID}/messages"
    assert first["page_id"] == PAGE_ID and first["status"] == 200 and first["response"] == body
    assert first["params"]["access_token"] == "REDACTED" and first["params"]["appsecret_proof"] == "REDACTED"
    assert first["body"]["recipient"] == {"id": "7001"}, "JSON-string form fields are parsed"
    assert first["body"]["message"]["text"].startswith("Thanks!")
    assert isinstance(first["at"], float)
    await emulator.clear_calls()
    assert await emulator.calls() == []


# --- the messaging window -----------------------------------------------------------------------------------


async def test_standard_window_is_24_hours_by_the_emulator_clock(start_emulator, http) -> None:
    emulator = await start_emulator(human_agent_permission=True)  # an app Meta granted the Human Agent permission
    await emulator.open_window(PAGE_ID, "7101")
    await emulator.set_clock_offset(23 * HOUR + 59 * 60)
    status, _ = await send(http, emulator, {"id": "7101"}, messaging_type="RESPONSE")
    assert status == 200, "23h59 after the shopper's message: inside the window"
    status, _ = await send(http, emulator, {"id": "7101"}, messaging_type="UPDATE")
    assert status == 200

    await emulator.set_clock_offset(24 * HOUR + 60)
    for messaging_type in ("RESPONSE", "UPDATE"):
        status, body = await send(http, emulator, {"id": "7101"}, messaging_type=messaging_type)
        assert status == 400 and error_of(body) == (10, 2018278), messaging_type
        assert body["error"]["message"] == "(#10) This message is sent outside of allowed window."

    status, _ = await send(http, emulator, {"id": "7101"}, messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
    assert status == 200, "a human agent may answer within 7 days"
    await emulator.set_clock_offset(7 * DAY - 60)
    status, _ = await send(http, emulator, {"id": "7101"}, messaging_type="MESSAGE_TAG", tag="CUSTOMER_FEEDBACK")
    assert status == 200
    await emulator.set_clock_offset(7 * DAY + 60)
    status, body = await send(http, emulator, {"id": "7101"}, messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
    assert status == 400 and error_of(body) == (10, 2018278)

    status, body = await send(http, emulator, {"id": "never-wrote"})
    assert status == 400 and error_of(body) == (10, 2018278), "no activity: no window"


async def test_the_human_agent_tag_is_refused_to_an_app_without_the_permission(emulator, http) -> None:
    await emulator.open_window(PAGE_ID, "7102")
    await emulator.set_clock_offset(30 * HOUR)
    status, body = await send(http, emulator, {"id": "7102"}, messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
    assert status == 400 and error_of(body) == (10, None)
    expected = json.loads((DATA / "meta" / "error_human_agent_permission.json").read_text())
    assert set(body["error"]) == set(expected["error"])
    assert body["error"]["message"] == expected["error"]["message"]
    status, _ = await send(http, emulator, {"id": "7102"}, messaging_type="MESSAGE_TAG", tag="CUSTOMER_FEEDBACK")
    assert status == 200, "only HUMAN_AGENT needs that permission"


async def test_activity_can_be_set_in_the_past(emulator, http) -> None:
    await emulator.open_window(PAGE_ID, "7102", at=time.time() - 25 * HOUR)
    assert error_of((await send(http, emulator, {"id": "7102"}))[1]) == (10, 2018278)


@pytest.mark.parametrize("tag", ["CONFIRMED_EVENT_UPDATE", "ACCOUNT_UPDATE", "POST_PURCHASE_UPDATE"])
async def test_retired_tags_are_refused_even_inside_the_window(emulator, http, tag: str) -> None:
    await emulator.open_window(PAGE_ID, "7103")
    status, body = await send(http, emulator, {"id": "7103"}, messaging_type="MESSAGE_TAG", tag=tag)
    assert status == 400 and error_of(body) == (100, None)
    assert tag in body["error"]["message"] and "no longer supported" in body["error"]["message"]


@pytest.mark.parametrize(
    "form",
    [
        {"messaging_type": "PROMOTIONAL"},
        {"messaging_type": "MESSAGE_TAG"},
        {"messaging_type": "MESSAGE_TAG", "tag": "SHIPPING_UPDATE"},
        {"notification_type": "LOUD"},
        {"sender_action": "dance", "message": None},
    ],
)
async def test_bad_send_parameters_are_code_100(emulator, http, form: dict[str, Any]) -> None:
    await emulator.open_window(PAGE_ID, "7104")
    if form.get("message", "keep") is None:
        form = {k: v for k, v in form.items() if k != "message"}
        status, body = await graph(
            http, emulator, "POST", f"{PAGE_ID}/messages", form={"recipient": {"id": "7104"}, **form}
        )
    else:
        status, body = await send(http, emulator, {"id": "7104"}, **form)
    assert status == 400 and error_of(body) == (100, None)


async def test_sender_action_needs_no_message(emulator, http) -> None:
    await emulator.open_window(PAGE_ID, "7105")
    form = {"recipient": {"id": "7105"}, "sender_action": "typing_on"}
    status, body = await graph(http, emulator, "POST", f"{PAGE_ID}/messages", form=form)
    assert (status, body) == (200, {"recipient_id": "7105"})


async def test_blocked_shopper_is_551(emulator, http) -> None:
    await emulator.open_window(PAGE_ID, "7106")
    await emulator.block(PAGE_ID, "7106")
    status, body = await send(http, emulator, {"id": "7106"})
    assert status == 400 and error_of(body) == (551, 1545041)
    assert body["error"]["message"] == "This person isn't available right now."
    await emulator.block(PAGE_ID, "7106", blocked=False)
    assert (await send(http, emulator, {"id": "7106"}))[0] == 200


# --- Meta's own request bodies ------------------------------------------------------------------------------


SUCCESS_SAMPLE = "send_api_success_response.json"  # Meta's answer, not a request


REQUEST_SAMPLES = sorted(p.name for p in (DATA / "meta").glob("send_*.json") if p.name != SUCCESS_SAMPLE)


def test_every_request_sample_is_covered() -> None:
    assert len(REQUEST_SAMPLES) == 4, REQUEST_SAMPLES


@pytest.mark.parametrize("sample", REQUEST_SAMPLES)
async def test_meta_sample_bodies_get_meta_success_shape(emulator, http, sample: str) -> None:
    for psid in ("<PSID>", "{PSID}"):
        await emulator.open_window(PAGE_ID, psid)
    await emulator.register_post(PAGE_ID, "PAGE-POST-ID", author_id="3000000000001")
    body = (DATA / "meta" / sample).read_bytes()
    url = f"{emulator.base_url}{V}/{PAGE_ID}/messages"
    headers = {"Content-Type": "application/json"}
    async with http.post(url, data=body, params={"access_token": TOKEN}, headers=headers) as resp:
        answer = await resp.json()
    expected = json.loads((DATA / "meta" / SUCCESS_SAMPLE).read_text())
    assert resp.status == 200, answer
    assert set(answer) == set(expected) and all(isinstance(v, str) and v for v in answer.values())
    [call] = await emulator.calls(path_contains="/messages")
    assert call["body"] == json.loads(body), "recorded as sent"
