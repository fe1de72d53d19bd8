"""The emulator's two levels of webhook subscription, as Meta plays them: the app's own
(`/{app-id}/subscriptions`, app token, callback verified) and the Page's list of every app's fields.

Each answer is checked against Meta's sample in tests/data/meta/. Each test starts a real emulator.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import APP_SECRET, DATA, PAGE_ID
from tests.test_bot.test_emulator.conftest import APP_ID, TOKEN, error_of, graph

APP_TOKEN = f"{APP_ID}|{APP_SECRET}"


def sample(name: str) -> dict[str, Any]:
    data = json.loads((DATA / "meta" / name).read_text())
    assert data.pop("_source")
    return data


def assert_shape(answer: Any, expected: Any, where: str = "") -> None:
    """`answer` has the sample's keys (a subset where the emulator leaves optional ones out) and value types."""
    if isinstance(expected, dict):
        assert isinstance(answer, dict) and set(answer) <= set(expected), (where, answer)
        for key, value in answer.items():
            assert_shape(value, expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(answer, list), (where, answer)
        for item in answer:
            assert_shape(item, expected[0], f"{where}[]")
    else:
        assert type(answer) is type(expected), (where, answer, expected)


@pytest.fixture
async def callback() -> Any:
    """Our /webhook's verification side: echoes hub.challenge when the verify token is right."""
    seen: list[dict[str, str]] = []

    async def verify(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        if request.query.get("hub.verify_token") != "the-verify-token":
            return web.Response(status=403, text="wrong token")
        return web.Response(text=request.query["hub.challenge"])

    app = web.Application()
    app.router.add_get("/webhook", verify)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhook"
    yield url, seen
    await runner.cleanup()


async def test_app_subscriptions_need_the_app_token_and_answer_as_meta_documents(emulator, http, callback) -> None:
    url, seen = callback
    path = f"{APP_ID}/subscriptions"
    # A Page token is not the app's: Meta answers (#15).
    status, body = await graph(http, emulator, "GET", path, token=TOKEN)
    assert status == 400 and error_of(body) == (15, None)
    status, body = await graph(http, emulator, "GET", path, token=APP_TOKEN)
    assert (status, body) == (200, {"data": []})
    form = {"object": "page", "callback_url": url, "fields": "feed,messages", "verify_token": "the-verify-token"}
    status, body = await graph(http, emulator, "POST", path, form=form, token=APP_TOKEN)
    assert status == 200, body
    assert_shape(body, sample("app_subscriptions_post.json"))
    assert body == {"success": True}
    # Meta verified the callback before answering: hub.mode, the challenge, our verify token.
    assert seen and seen[-1]["hub.mode"] == "subscribe" and seen[-1]["hub.verify_token"] == "the-verify-token"
    status, body = await graph(http, emulator, "GET", path, token=APP_TOKEN)
    assert_shape(body, sample("app_subscriptions_get.json"))
    [entry] = body["data"]
    assert (entry["object"], entry["callback_url"], entry["active"]) == ("page", url, True)
    assert [f["name"] for f in entry["fields"]] == ["feed", "messages"]
    # Fields posted later are added to those there.
    form["fields"] = "messaging_postbacks"
    await graph(http, emulator, "POST", path, form=form, token=APP_TOKEN)
    _, body = await graph(http, emulator, "GET", path, token=APP_TOKEN)
    assert [f["name"] for f in body["data"][0]["fields"]] == ["feed", "messages", "messaging_postbacks"]
    await emulator.drop_app_subscription("page")
    assert (await graph(http, emulator, "GET", path, token=APP_TOKEN))[1] == {"data": []}


async def test_a_callback_that_does_not_verify_fails_the_subscription(emulator, http, callback) -> None:
    url, _ = callback
    form = {"object": "page", "callback_url": url, "fields": "feed", "verify_token": "another-token"}
    status, body = await graph(http, emulator, "POST", f"{APP_ID}/subscriptions", form=form, token=APP_TOKEN)
    assert status == 400 and error_of(body) == (2200, None)
    assert "403" in body["error"]["message"]
    assert (await graph(http, emulator, "GET", f"{APP_ID}/subscriptions", token=APP_TOKEN))[1] == {"data": []}


async def test_a_page_lists_every_app_it_subscribed_with_its_own_fields(emulator, http) -> None:
    path = f"{PAGE_ID}/subscribed_apps"
    await emulator.subscribe_other_app(PAGE_ID, "777000777", ["feed", "messages", "messaging_postbacks"])
    await graph(http, emulator, "POST", path, form={"subscribed_fields": "feed"})
    status, body = await graph(http, emulator, "GET", path)
    assert status == 200
    assert_shape(body, sample("page_subscribed_apps.json"))
    fields = {app["id"]: app["subscribed_fields"] for app in body["data"]}
    assert fields == {"777000777": ["feed", "messages", "messaging_postbacks"], APP_ID: ["feed"]}
    # Dropping our subscription leaves the other app's.
    await emulator.unsubscribe(PAGE_ID)
    _, body = await graph(http, emulator, "GET", path)
    assert [app["id"] for app in body["data"]] == ["777000777"]
