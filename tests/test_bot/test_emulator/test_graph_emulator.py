"""The Graph emulator answers like Meta: success shapes, error codes, the messaging rules, faults and webhooks.

Each test starts a real emulator on a free port; a tiny webhook receiver stands in for our server.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.emulator.app import GraphEmulator
from bot.emulator.config import EmulatedPage, EmulatorConfig
from bot.emulator.control import EmulatorError
from bot.inbound.signature import verify_signature
from tests.conftest import APP_SECRET, DATA, PAGE_ID

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "page-token-1"
OTHER_PAGE_ID = "1000000000002"
OTHER_TOKEN = "page-token-2"
APP_ID = "555000555"
V = "v26.0"
HOUR = 3600
DAY = 24 * HOUR


def proof(token: str, secret: str = APP_SECRET) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


@dataclass
class Receiver:
    """Our server's /webhook, reduced to recording what arrives and answering with scripted statuses."""

    url: str = ""
    received: list[tuple[bytes, str | None]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body, _ in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()

    async def webhook(request: web.Request) -> web.Response:
        rec.received.append((await request.read(), request.headers.get("X-Hub-Signature-256")))
        return web.Response(status=rec.statuses.pop(0) if rec.statuses else 200, text="ok")

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/webhook"
    yield rec
    await runner.cleanup()


StartEmulator = Callable[..., Awaitable[GraphEmulator]]


@pytest.fixture
async def start_emulator(receiver: Receiver) -> AsyncIterator[StartEmulator]:
    started: list[GraphEmulator] = []

    async def start(**overrides: Any) -> GraphEmulator:
        values: dict[str, Any] = {
            "pages": {
                PAGE_ID: EmulatedPage(TOKEN, "PlusOne Demo Shop", "plusonedemo"),
                OTHER_PAGE_ID: EmulatedPage(OTHER_TOKEN, "Other Shop"),
            },
            "app_id": APP_ID,
            "app_secret": APP_SECRET,
            "webhook_url": receiver.url,
            "webhook_retry_delays": (0.01, 0.02, 0.04),
        }
        values.update(overrides)
        emulator = GraphEmulator(EmulatorConfig(**values))
        await emulator.start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        await emulator.stop()


@pytest.fixture
async def emulator(start_emulator: StartEmulator) -> GraphEmulator:
    return await start_emulator()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def graph(
    http: aiohttp.ClientSession,
    emulator: GraphEmulator,
    method: str,
    path: str,
    *,
    form: dict[str, Any] | None = None,
    query: dict[str, str] | None = None,
    token: str | None = TOKEN,
    with_proof: bool = True,
) -> tuple[int, Any]:
    """A Graph call the way python-facebook-api makes it: token and proof beside the (form) arguments."""
    auth: dict[str, str] = {}
    if token is not None:
        auth["access_token"] = token
        if with_proof:
            auth["appsecret_proof"] = proof(token)
    url = f"{emulator.base_url}{V}/{path}"
    if method == "GET":
        kwargs: dict[str, Any] = {"params": {**(query or {}), **auth}}
    else:
        data = {k: json.dumps(v) if isinstance(v, dict | list) else str(v) for k, v in (form or {}).items()}
        kwargs = {"data": {**data, **auth}, "params": query}
    async with http.request(method, url, **kwargs) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body


async def send(
    http: aiohttp.ClientSession, emulator: GraphEmulator, recipient: dict[str, str], **form: Any
) -> tuple[int, Any]:
    form.setdefault("message", {"text": "Thanks! Your order A x1 is in the cart."})
    return await graph(http, emulator, "POST", f"{PAGE_ID}/messages", form={"recipient": recipient, **form})


def error_of(body: Any) -> tuple[int, int | None]:
    error = body["error"]
    assert set(error) <= {"message", "type", "code", "error_subcode", "fbtrace_id"}
    assert error["type"] == "OAuthException" and error["fbtrace_id"] and error["message"]
    return error["code"], error.get("error_subcode")


# --- success shapes -----------------------------------------------------------------------------------------


async def test_page_info_answers_only_the_fields_asked_for(emulator, http) -> None:
    status, body = await graph(http, emulator, "GET", PAGE_ID, query={"fields": "name,username"})
    assert (status, body) == (200, {"id": PAGE_ID, "name": "PlusOne Demo Shop", "username": "plusonedemo"})
    status, body = await graph(http, emulator, "GET", "me", query={"fields": "username"})
    assert (status, body) == (200, {"id": PAGE_ID, "username": "plusonedemo"})
    status, body = await graph(http, emulator, "GET", PAGE_ID)
    assert body == {"id": PAGE_ID, "name": "PlusOne Demo Shop"}
    status, body = await graph(http, emulator, "GET", PAGE_ID, query={"fields": "name,fan_count"})
    assert status == 400 and error_of(body) == (100, None)
    assert "(fan_count)" in body["error"]["message"]


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


async def test_version_prefix_is_optional_and_any_version_works(emulator, http) -> None:
    for prefix in ("v19.0/", "v26.0/", ""):
        url = f"{emulator.base_url}{prefix}{PAGE_ID}"
        async with http.get(url, params={"fields": "name", "access_token": TOKEN}) as resp:
            assert resp.status == 200, prefix
            assert (await resp.json())["name"] == "PlusOne Demo Shop"


async def test_json_body_with_token_in_query_and_bearer_header(emulator, http) -> None:
    await emulator.open_window(PAGE_ID, "7002")
    body = {"recipient": {"id": "7002"}, "message": {"text": "hi"}, "messaging_type": "UPDATE"}
    url = f"{emulator.base_url}{V}/me/messages"
    async with http.post(url, json=body, params={"access_token": TOKEN}) as resp:
        assert resp.status == 200 and (await resp.json())["recipient_id"] == "7002"
    async with http.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        assert resp.status == 200
    async with http.post(url, data=b"{not json", headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400 and error_of(await resp.json())[0] == 100


# --- tokens and appsecret_proof -----------------------------------------------------------------------------


async def test_token_and_appsecret_proof_checks(start_emulator, http) -> None:
    emulator = await start_emulator()
    cases = [
        ({"token": None}, (190, None)),
        ({"token": "not-a-token"}, (190, None)),
        ({"token": OTHER_TOKEN}, (190, None)),  # a real token, but another Page's
    ]
    for kwargs, expected in cases:
        status, body = await graph(http, emulator, "GET", PAGE_ID, query={"fields": "name"}, **kwargs)
        assert status == 400 and error_of(body) == expected, kwargs
        assert body["error"]["message"] == "Invalid OAuth access token."

    url = f"{emulator.base_url}{V}/{PAGE_ID}"
    async with http.get(url, params={"access_token": TOKEN, "appsecret_proof": proof(TOKEN, "wrong")}) as resp:
        body = await resp.json()
        assert resp.status == 400 and error_of(body) == (100, None)
        assert body["error"]["message"] == "Invalid appsecret_proof provided in the API argument"
    status, _ = await graph(http, emulator, "GET", PAGE_ID, with_proof=False)
    assert status == 200, "Meta only requires the proof when the app says so"

    await emulator.expire_token(PAGE_ID)
    status, body = await graph(http, emulator, "GET", PAGE_ID)
    assert status == 400 and error_of(body) == (190, 463)
    assert body["error"]["message"].startswith("Error validating access token: Session has expired")
    await emulator.expire_token(PAGE_ID, expired=False)
    assert (await graph(http, emulator, "GET", PAGE_ID))[0] == 200

    strict = await start_emulator(require_appsecret_proof=True)
    status, body = await graph(http, strict, "GET", PAGE_ID, with_proof=False)
    assert status == 400 and error_of(body) == (100, None)
    lax = await start_emulator(verify_appsecret_proof=False)
    async with http.get(f"{lax.base_url}{V}/{PAGE_ID}", params={"access_token": TOKEN, "appsecret_proof": "x"}) as r:
        assert r.status == 200


# --- the messaging window -----------------------------------------------------------------------------------


async def test_standard_window_is_24_hours_by_the_emulator_clock(emulator, http) -> None:
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


# --- message validation -------------------------------------------------------------------------------------


def _quick_replies(n: int, title: str = "Red") -> list[dict[str, str]]:
    return [{"content_type": "text", "title": title, "payload": f"P{i}"} for i in range(n)]


def _button_template(text: str, buttons: int) -> dict[str, Any]:
    payload = {
        "template_type": "button",
        "text": text,
        "buttons": [{"type": "postback", "title": f"B{i}", "payload": f"P{i}"} for i in range(buttons)],
    }
    return {"attachment": {"type": "template", "payload": payload}}


def _generic(elements: int, title: str = "Hat", buttons: int = 1) -> dict[str, Any]:
    element = {
        "title": title,
        "subtitle": "A hat",
        "buttons": [{"type": "web_url", "url": "https://example.com", "title": f"B{i}"} for i in range(buttons)],
    }
    payload = {"template_type": "generic", "elements": [element] * elements}
    return {"attachment": {"type": "template", "payload": payload}}


@pytest.mark.parametrize(
    ("message", "ok"),
    [
        ({"text": "x" * 2000}, True),
        ({"text": "買" * 2000}, True),
        ({"text": "x" * 2001}, False),
        ({"text": "買" * 2001}, False),
        ({"text": ""}, False),
        ({}, False),
        ({"metadata": "only metadata"}, False),
        ({"text": "hi", "attachment": {"type": "image", "payload": {"url": "https://x/y.png"}}}, False),
        ({"attachment": {"type": "image", "payload": {"url": "https://x/y.png"}}}, True),
        ({"attachment": {"type": "sticker", "payload": {"url": "https://x/y.png"}}}, False),
        ({"text": "pick", "quick_replies": _quick_replies(13)}, True),
        ({"text": "pick", "quick_replies": _quick_replies(14)}, False),
        ({"text": "pick", "quick_replies": _quick_replies(1, "x" * 20)}, True),
        ({"text": "pick", "quick_replies": _quick_replies(1, "x" * 21)}, False),
        ({"text": "pick", "quick_replies": [{"content_type": "user_email"}]}, True),
        (_button_template("x" * 640, 3), True),
        (_button_template("x" * 641, 1), False),
        (_button_template("ok", 0), False),
        (_button_template("ok", 4), False),
        (_generic(10), True),
        (_generic(11), False),
        (_generic(1, title="x" * 80), True),
        (_generic(1, title="x" * 81), False),
        (_generic(1, buttons=4), False),
        ({"text": "hi", "metadata": "k" * 1000}, True),
        ({"text": "hi", "metadata": "k" * 1001}, False),
    ],
)
async def test_message_validation_follows_meta_limits(emulator, http, message: dict[str, Any], ok: bool) -> None:
    await emulator.open_window(PAGE_ID, "7201")
    status, body = await send(http, emulator, {"id": "7201"}, message=message)
    if ok:
        assert status == 200, body
    else:
        assert status == 400 and error_of(body) == (100, None), body


# --- private replies ----------------------------------------------------------------------------------------


async def test_one_private_reply_per_comment(emulator, http, receiver) -> None:
    played = await emulator.deliver_comment(PAGE_ID, "2000000000001", "3000000000001", "A+1")
    comment_id = played["comment_id"]
    status, body = await send(http, emulator, {"comment_id": comment_id})
    assert status == 200 and body["recipient_id"] == "3000000000001" and body["message_id"].startswith("m_")

    status, body = await send(http, emulator, {"comment_id": comment_id})
    assert status == 400 and error_of(body) == (10, 2018336)
    assert body["error"]["message"] == "(#10) Only one private reply is allowed per comment"

    # Two workers racing on a fresh comment: exactly one reply leaves.
    await emulator.register_comment(PAGE_ID, "2000000000001_99", author_id="3000000000002")
    results = await asyncio.gather(*(send(http, emulator, {"comment_id": "2000000000001_99"}) for _ in range(2)))
    assert sorted(status for status, _ in results) == [200, 400]

    # The comment alone does not open the 24-hour window.
    status, body = await send(http, emulator, {"id": "3000000000001"})
    assert status == 400 and error_of(body) == (10, 2018278)


async def test_private_reply_refuses_unknown_or_foreign_comments(emulator, http) -> None:
    status, body = await send(http, emulator, {"comment_id": "123_456"})
    assert status == 400 and error_of(body) == (100, 2018292)
    assert body["error"]["message"] == "(#100) Invalid comment_id parameter"
    await emulator.register_comment(OTHER_PAGE_ID, "777_888", author_id="3000000000003")
    status, body = await send(http, emulator, {"comment_id": "777_888"})
    assert error_of(body) == (100, 2018292), "a comment on another Page"


async def test_private_reply_only_within_7_days_of_the_comment(emulator, http) -> None:
    now = time.time()
    await emulator.register_comment(PAGE_ID, "1_old", author_id="u1", created_time=now - 7 * DAY - 60)
    await emulator.register_comment(PAGE_ID, "1_recent", author_id="u2", created_time=now - 7 * DAY + 120)
    status, body = await send(http, emulator, {"comment_id": "1_old"})
    assert status == 400 and error_of(body) == (10, 2018278)
    status, _ = await send(http, emulator, {"comment_id": "1_recent"})
    assert status == 200, "private replies need no 24-hour window, only the comment's 7 days"

    await emulator.register_comment(PAGE_ID, "1_now", author_id="u3")
    await emulator.set_clock_offset(7 * DAY + 60)
    assert error_of((await send(http, emulator, {"comment_id": "1_now"}))[1]) == (10, 2018278)


async def test_private_reply_to_a_visitor_post(emulator, http) -> None:
    await emulator.register_post(PAGE_ID, f"{PAGE_ID}_555", author_id="3000000000009")
    status, body = await send(http, emulator, {"post_id": f"{PAGE_ID}_555"})
    assert status == 200 and body["recipient_id"] == "3000000000009"
    assert error_of((await send(http, emulator, {"post_id": f"{PAGE_ID}_555"}))[1]) == (10, 2018336)
    assert error_of((await send(http, emulator, {"post_id": "nope"}))[1]) == (100, 2018292)


# --- comments: public replies and hiding --------------------------------------------------------------------


async def test_public_reply_and_hide(emulator, http) -> None:
    await emulator.register_comment(PAGE_ID, "901097836652708_903438993085259", author_id="3000000000001")
    path = "901097836652708_903438993085259"
    status, first = await graph(http, emulator, "POST", f"{path}/comments", form={"message": "Thanks, see DM!"})
    assert status == 200 and set(first) == {"id"} and first["id"].startswith("901097836652708_")
    _, second = await graph(http, emulator, "POST", f"{path}/comments", form={"message": "Thanks, see DM!"})
    assert second["id"] != first["id"], "not idempotent, like Meta"

    status, body = await graph(http, emulator, "POST", path, form={"is_hidden": "true"})
    assert (status, body) == (200, {"success": True})
    state = {c["id"]: c for c in (await emulator.comments())["comments"]}
    assert state[path]["is_hidden"] is True and state[path]["replies"] == [first["id"], second["id"]]
    assert (await graph(http, emulator, "POST", path, form={"is_hidden": "false"}))[1] == {"success": True}
    assert not {c["id"]: c for c in (await emulator.comments())["comments"]}[path]["is_hidden"]

    status, body = await graph(http, emulator, "POST", path, form={"is_hidden": "maybe"})
    assert status == 400 and error_of(body) == (100, None)
    status, body = await graph(http, emulator, "POST", f"{path}/comments", form={})
    assert status == 400 and error_of(body) == (100, None)
    for unknown in ("1_2/comments", "1_2"):
        form = {"message": "hi", "is_hidden": "true"}
        status, body = await graph(http, emulator, "POST", unknown, form=form)
        assert status == 400 and error_of(body) == (100, 33), unknown
    status, body = await graph(http, emulator, "POST", path, form={"is_hidden": "true"}, token=OTHER_TOKEN)
    assert status == 400 and error_of(body) == (190, None), "the token of the Page owning the comment"


# --- subscribed_apps ----------------------------------------------------------------------------------------


async def test_subscribed_apps_round_trip(emulator, http) -> None:
    path = f"{PAGE_ID}/subscribed_apps"
    assert (await graph(http, emulator, "GET", path))[1] == {"data": []}
    form = {"subscribed_fields": "feed,messages,messaging_postbacks,message_echoes"}
    assert (await graph(http, emulator, "POST", path, form=form))[1] == {"success": True}
    status, body = await graph(http, emulator, "GET", path)
    assert status == 200
    assert body == {
        "data": [
            {
                "id": APP_ID,
                "name": "PlusOne",
                "subscribed_fields": ["feed", "messages", "messaging_postbacks", "message_echoes"],
            }
        ]
    }
    await emulator.unsubscribe(PAGE_ID)  # as Meta does after a webhook kept failing
    assert (await graph(http, emulator, "GET", path))[1] == {"data": []}
    status, body = await graph(http, emulator, "POST", path, form={})
    assert status == 400 and error_of(body) == (100, None)
    await graph(http, emulator, "POST", path, form={"subscribed_fields": "feed"})
    assert (await graph(http, emulator, "DELETE", path))[1] == {"success": True}
    assert (await graph(http, emulator, "GET", path))[1] == {"data": []}


# --- rate limit ---------------------------------------------------------------------------------------------


async def test_rate_limit_per_page_per_second(start_emulator, http) -> None:
    emulator = await start_emulator(messages_per_second=20, send_echoes=False)
    await emulator.open_window(PAGE_ID, "7301")
    await emulator.open_window(OTHER_PAGE_ID, "7301")
    results = await asyncio.gather(*(send(http, emulator, {"id": "7301"}) for _ in range(30)))
    statuses = [status for status, _ in results]
    assert statuses.count(200) == 20 and statuses.count(400) == 10
    assert {error_of(body) for status, body in results if status == 400} == {(613, None)}
    assert results[-1][1]["error"]["message"] == "(#613) Calls to this API have exceeded the rate limit."

    # Another Page has its own budget.
    form = {"recipient": {"id": "7301"}, "message": {"text": "hi"}}
    status, _ = await graph(http, emulator, "POST", f"{OTHER_PAGE_ID}/messages", form=form, token=OTHER_TOKEN)
    assert status == 200
    await asyncio.sleep(1.05)
    assert (await send(http, emulator, {"id": "7301"}))[0] == 200, "a second later the window has moved on"


# --- faults -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "code", "subcode"),
    [
        ("server_error", 500, 2, None),
        ("temporary", 503, 2, None),
        ("rate_limit", 400, 613, None),
        ("outside_window", 400, 10, 2018278),
        ("blocked", 400, 551, 1545041),
        ("expired_token", 400, 190, 463),
    ],
)
async def test_fault_next_n(emulator, http, kind: str, status: int, code: int, subcode: int | None) -> None:
    await emulator.open_window(PAGE_ID, "7401")
    await emulator.set_fault(kind, count=2)
    for _ in range(2):
        got_status, body = await send(http, emulator, {"id": "7401"})
        assert got_status == status and error_of(body) == (code, subcode)
    assert (await send(http, emulator, {"id": "7401"}))[0] == 200, "only the next 2"
    calls = await emulator.calls()
    assert [c["status"] for c in calls] == [status, status, 200]


async def test_server_error_may_be_a_bare_5xx(emulator, http) -> None:
    await emulator.set_fault("server_error", count=1, status=503)
    status, body = await graph(http, emulator, "GET", PAGE_ID)
    assert status == 503 and isinstance(body, str)


async def test_fault_share_is_seeded_and_path_filtered(emulator, http) -> None:
    await emulator.open_window(PAGE_ID, "7402")

    async def pattern() -> list[int]:
        await emulator.clear_faults()
        await emulator.set_fault("temporary", share=0.3, seed=7, path_contains="/messages")
        assert [f["share"] for f in await emulator.faults()] == [0.3]
        return [(await send(http, emulator, {"id": "7402"}))[0] for _ in range(40)]

    first = await pattern()
    assert 0 < first.count(503) < 40 and first.count(200) > first.count(503)
    assert await pattern() == first, "the same seed fails the same calls"
    assert (await graph(http, emulator, "GET", PAGE_ID))[0] == 200, "other paths are untouched"
    await emulator.clear_faults()
    assert await emulator.faults() == []


async def test_timeout_fault_holds_the_request(emulator, http) -> None:
    await emulator.set_fault("timeout", count=1, delay_s=30)
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        async with http.get(
            f"{emulator.base_url}{V}/{PAGE_ID}",
            params={"access_token": TOKEN},
            timeout=aiohttp.ClientTimeout(total=0.3),
        ):
            pass
    assert time.monotonic() - started < 5
    await emulator.set_fault("timeout", count=1, delay_s=0.05)
    status, _ = await graph(http, emulator, "GET", PAGE_ID)
    assert status == 504
    assert (await graph(http, emulator, "GET", PAGE_ID))[0] == 200
    assert [c["status"] for c in await emulator.calls()] == [504, 504, 200]


# --- webhooks: echoes and the player ------------------------------------------------------------------------


async def wait_for(predicate: Callable[[], bool], limit: float = 5.0) -> None:
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


async def test_bad_control_input_is_400_with_a_reason(emulator, http) -> None:
    bad: list[tuple[str, str, Any]] = [
        ("POST", "faults", {"kind": "meteor"}),
        ("POST", "faults", {"kind": "timeout", "next": 0}),
        ("POST", "faults", {"kind": "timeout", "next": 1, "share": 0.5}),
        ("POST", "faults", {"kind": "timeout", "share": 2}),
        ("POST", "faults", {"kind": "server_error", "status": 418}),
        ("POST", "faults", ["not", "an", "object"]),
        ("POST", "activity", {"page_id": "404", "psid": "1"}),
        ("POST", "activity", {"page_id": PAGE_ID}),
        ("POST", "activity", {"page_id": PAGE_ID, "psid": "1", "at": "yesterday"}),
        ("POST", "block", {"page_id": PAGE_ID, "psid": "1", "blocked": "yes"}),
        ("POST", "clock", {"offset_s": "a lot"}),
        ("POST", "comments", {"page_id": PAGE_ID}),
        ("POST", "comments", {"page_id": PAGE_ID, "comment_id": "1_2", "created_time": "last week"}),
        ("POST", "unsubscribe", {}),
        ("POST", "webhooks/comment", {"page_id": PAGE_ID, "post_id": "1", "user_id": "2"}),
        ("POST", "webhooks/message", {"page_id": PAGE_ID, "psid": "2", "text": 5}),
        ("POST", "webhooks/raw", {"payload": "nope"}),
    ]
    for method, path, body in bad:
        async with http.request(method, f"{emulator.base_url}_emulator/{path}", json=body) as resp:
            answer = await resp.json()
            assert resp.status == 400 and answer["error"], (path, body, answer)
    async with http.post(f"{emulator.base_url}_emulator/clock", data=b"{oops") as resp:
        assert resp.status == 400
    async with http.get(f"{emulator.base_url}_emulator/nothing-here") as resp:
        assert resp.status == 404


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


# --- the real client ----------------------------------------------------------------------------------------


async def test_python_facebook_api_client(emulator) -> None:
    from pyfacebook import GraphAPI
    from pyfacebook.exceptions import FacebookError

    def client(secret: str = APP_SECRET) -> GraphAPI:
        return GraphAPI(
            app_secret=secret,
            access_token=TOKEN,
            version=V,
            base_url=emulator.base_url,
            sleep_on_rate_limit=False,
            timeout=5,
        )

    api = client()
    info = await asyncio.to_thread(api.get_object, PAGE_ID, fields="name,username")
    assert info == {"id": PAGE_ID, "name": "PlusOne Demo Shop", "username": "plusonedemo"}

    await emulator.open_window(PAGE_ID, "7601")
    data = {
        "recipient": json.dumps({"id": "7601"}),
        "message": json.dumps({"text": "哈囉, your cart is ready", "metadata": "outbox:7"}),
        "messaging_type": "RESPONSE",
    }
    sent = await asyncio.to_thread(api.post_object, object_id=PAGE_ID, connection="messages", data=data)
    assert sent["recipient_id"] == "7601" and sent["message_id"].startswith("m_")
    [call] = await emulator.calls(path_contains="/messages")
    assert call["body"]["message"]["text"] == "哈囉, your cart is ready"

    played = await emulator.deliver_comment(PAGE_ID, "2000000000001", "3000000000001", "B+2")
    comment_id = played["comment_id"]
    reply = {"recipient": json.dumps({"comment_id": comment_id}), "message": json.dumps({"text": "Got it!"})}
    assert (await asyncio.to_thread(api.post_object, object_id=PAGE_ID, connection="messages", data=reply))[
        "recipient_id"
    ] == "3000000000001"
    with pytest.raises(FacebookError) as second:
        await asyncio.to_thread(api.post_object, object_id=PAGE_ID, connection="messages", data=reply)
    assert (second.value.code, second.value.error_subcode) == (10, 2018336)
    assert second.value.fbtrace_id

    public = await asyncio.to_thread(
        api.post_object, object_id=comment_id, connection="comments", data={"message": "Thanks!"}
    )
    assert public["id"].startswith("2000000000001_")
    hidden = await asyncio.to_thread(api.post_object, object_id=comment_id, data={"is_hidden": True})
    assert hidden == {"success": True}

    subscribed = await asyncio.to_thread(
        api.post_object, object_id=PAGE_ID, connection="subscribed_apps", data={"subscribed_fields": "feed,messages"}
    )
    assert subscribed == {"success": True}

    with pytest.raises(FacebookError) as wrong_secret:
        await asyncio.to_thread(client("not-the-secret").get_object, PAGE_ID, fields="name")
    assert wrong_secret.value.code == 100

    with pytest.raises(FacebookError) as outside:
        late = {"recipient": json.dumps({"id": "nobody"}), "message": json.dumps({"text": "hi"})}
        await asyncio.to_thread(api.post_object, object_id=PAGE_ID, connection="messages", data=late)
    assert (outside.value.code, outside.value.error_subcode) == (10, 2018278)


# --- the command --------------------------------------------------------------------------------------------


def test_page_flag_parsing() -> None:
    import argparse

    from bot.cli.emulator import parse_page

    page_id, page = parse_page("1000000000001:tok:PlusOne Demo Shop:plusonedemo")
    assert page_id == "1000000000001" and page == EmulatedPage("tok", "PlusOne Demo Shop", "plusonedemo")
    assert parse_page("42:tok")[1].name == "Page 42"
    for bad in ("42", ":tok", "42:", "shop:tok"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_page(bad)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUSONE_")}
    env.update({"PLUSONE_DATA_DIR": str(tmp_path / "data"), **extra})
    return env


def test_command_bad_flags_exit_2(tmp_path: Path, monkeypatch, capsys) -> None:
    from bot.cli.emulator import main

    for name in [k for k in os.environ if k.startswith("PLUSONE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PLUSONE_DATA_DIR", str(tmp_path / "data"))
    for args in (["--page", "nope"], ["--port", "99999"]):
        assert main([*args, "--app-secret", "s"]) == 2, args
        assert "emulator" in capsys.readouterr().err, args
    assert main(["--page", "1:a", "--page", "1:b", "--app-secret", "s"]) == 2
    assert "twice" in capsys.readouterr().err
    assert main(["--page", "1:a", "--page", "2:a", "--app-secret", "s"]) == 2
    assert "own token" in capsys.readouterr().err
    assert main([]) == 2
    assert "app secret" in capsys.readouterr().err


def test_command_prints_its_base_url_and_serves(tmp_path: Path) -> None:
    import urllib.request

    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli.emulator", "--port", "0", "--no-echoes"],
        env=_env(tmp_path, PLUSONE_APP_SECRET="cli-secret"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/")
        url = f"{base_url}v26.0/1000000000001?fields=name,username&access_token=demo-page-token"
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert json.load(resp) == {"id": "1000000000001", "name": "PlusOne Demo Shop", "username": "plusonedemo"}
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=10)
        stderr = process.stderr.read() if process.stderr else ""
    assert code == 0, stderr
    assert "webhooks to http://127.0.0.1:8080/webhook" in stderr
