"""The emulator's Page surface: Page info answers only the fields asked for; the app's subscription round trip.

Each test starts a real emulator on a free port (fixtures in conftest.py).
"""

from __future__ import annotations

from tests.conftest import PAGE_ID
from tests.test_bot.test_emulator.conftest import APP_ID, error_of, graph

# --- Page info ----------------------------------------------------------------------------------------------


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
