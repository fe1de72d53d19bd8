"""The emulator's Messenger profile: stored per Page, checked against Meta's limits, answered in Meta's shapes
(tests/data/meta/messenger_profile_*.json), and what it changes when a person opens an m.me link with a ref.

Each test starts a real emulator on a free port and a tiny webhook receiver (conftest.py).
"""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import DATA, PAGE_ID
from tests.test_bot.test_emulator.conftest import OTHER_PAGE_ID, error_of, graph
from tests.test_bot.test_emulator.test_subscriptions import assert_shape, sample

PATH = "me/messenger_profile"
MENU = [
    {
        "locale": "default",
        "composer_input_disabled": False,
        "call_to_actions": [{"type": "postback", "title": "Cart", "payload": "v1:CART"}],
    }
]


async def post(http: Any, emulator: Any, **fields: Any) -> tuple[int, Any]:
    return await graph(http, emulator, "POST", PATH, form=fields)


async def test_the_profile_round_trip_answers_as_meta_documents(emulator, http) -> None:
    status, body = await post(
        http,
        emulator,
        get_started={"payload": "GET_STARTED"},
        greeting=[{"locale": "default", "text": "Hi!"}, {"locale": "zh_TW", "text": "你好！"}],
        ice_breakers=[{"locale": "default", "call_to_actions": [{"question": "How to order?", "payload": "v1:FAQ:o"}]}],
        persistent_menu=MENU,
    )
    assert (status, body) == (200, {"result": "success"})
    assert_shape(body, sample("messenger_profile_post.json"))
    status, body = await graph(http, emulator, "GET", PATH, query={"fields": "get_started,greeting,persistent_menu"})
    assert status == 200
    assert_shape(body, sample("messenger_profile_get.json"))
    assert body["data"][0]["get_started"] == {"payload": "GET_STARTED"}
    assert set(body["data"][0]) == {"get_started", "greeting", "persistent_menu"}, "only the fields asked for"
    # Per Page: the other Page's profile is empty.
    status, body = await graph(
        http,
        emulator,
        "GET",
        f"{OTHER_PAGE_ID}/messenger_profile",
        query={"fields": "get_started"},
        token="page-token-2",
    )
    assert (status, body) == (200, {"data": []})


async def test_meta_s_limits_are_enforced_and_nothing_changes_on_a_refusal(emulator, http) -> None:
    menu_only = await post(http, emulator, persistent_menu=MENU)
    assert menu_only[0] == 400 and error_of(menu_only[1]) == (100, None)
    expected = json.loads((DATA / "meta" / "error_messenger_profile_menu_without_get_started.json").read_text())
    assert menu_only[1]["error"]["message"] == expected["error"]["message"]
    refusals = [
        {"greeting": [{"locale": "default", "text": "x" * 161}]},  # at most 160 characters
        {"greeting": [{"locale": "zh_TW", "text": "你好"}]},  # no default locale
        {
            "ice_breakers": [
                {"locale": "default", "call_to_actions": [{"question": f"Q{i}", "payload": "p"} for i in range(5)]}
            ]
        },
        {
            "get_started": {"payload": "GET_STARTED"},
            "persistent_menu": [
                {
                    "locale": "default",
                    "call_to_actions": [{"type": "postback", "title": f"T{i}", "payload": "p"} for i in range(21)],
                }
            ],
        },
        {
            "get_started": {"payload": "GET_STARTED"},
            "persistent_menu": [
                {"locale": "default", "call_to_actions": [{"type": "postback", "title": "x" * 31, "payload": "p"}]}
            ],
        },
    ]
    for fields in refusals:
        status, body = await post(http, emulator, **fields)
        assert status == 400 and error_of(body) == (100, None), fields
    status, body = await graph(http, emulator, "GET", PATH, query={"fields": "get_started,greeting"})
    assert body == {"data": []}, "nothing was stored"
    assert (await post(http, emulator, greeting=[{"locale": "default", "text": "x" * 160}]))[0] == 200


async def test_an_mme_ref_reaches_the_app_only_through_get_started_for_a_new_person(emulator, http, receiver) -> None:
    # No Get Started yet: a new person's ref is lost; their first message comes without it.
    answer = await emulator.open_mme(PAGE_ID, "4000000000001", "MEMBERCODE1", text="hello")
    assert answer["opened"] == "message"
    [item] = receiver.payloads()[-1]["entry"][0]["messaging"]
    assert item["message"]["text"] == "hello" and "referral" not in json.dumps(item)
    # The same person again (a thread now exists): a messaging_referrals event carries the ref.
    answer = await emulator.open_mme(PAGE_ID, "4000000000001", "MEMBERCODE1")
    assert answer["opened"] == "referral"
    [item] = receiver.payloads()[-1]["entry"][0]["messaging"]
    assert item["referral"] == {"ref": "MEMBERCODE1", "source": "SHORTLINK", "type": "OPEN_THREAD"}
    # With Get Started, a new person's tap brings the ref in postback.referral.
    assert (await post(http, emulator, get_started={"payload": "GET_STARTED"}))[0] == 200
    answer = await emulator.open_mme(PAGE_ID, "4000000000002", "MEMBERCODE1")
    assert answer["opened"] == "get_started"
    [item] = receiver.payloads()[-1]["entry"][0]["messaging"]
    assert item["postback"]["payload"] == "GET_STARTED"
    assert item["postback"]["referral"] == {"ref": "MEMBERCODE1", "source": "SHORTLINK", "type": "OPEN_THREAD"}
    # Ice breakers take Get Started's place on the welcome screen (and no ref is documented there).
    ice = [{"locale": "default", "call_to_actions": [{"question": "How to order?", "payload": "v1:FAQ:o"}]}]
    assert (await post(http, emulator, ice_breakers=ice))[0] == 200
    answer = await emulator.open_mme(PAGE_ID, "4000000000003", "MEMBERCODE1")
    assert answer["opened"] == "ice_breaker"
    [item] = receiver.payloads()[-1]["entry"][0]["messaging"]
    assert item["postback"]["payload"] == "v1:FAQ:o" and "referral" not in item["postback"]


async def test_the_profile_api_allows_ten_calls_per_page_in_ten_minutes(emulator, http) -> None:
    query = {"fields": "get_started"}
    for _ in range(10):
        assert (await graph(http, emulator, "GET", PATH, query=query))[0] == 200
    status, body = await graph(http, emulator, "GET", PATH, query=query)
    assert status == 400 and error_of(body) == (613, None)
    other = await graph(http, emulator, "GET", f"{OTHER_PAGE_ID}/messenger_profile", query=query, token="page-token-2")
    assert other[0] == 200, "per Page"
    await emulator.set_clock_offset(601)
    assert (await graph(http, emulator, "GET", PATH, query=query))[0] == 200
