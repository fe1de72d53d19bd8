"""The emulator as a whole: Graph routes under any version prefix, and python-facebook-api talking to it.

Each test starts a real emulator on a free port (fixtures in conftest.py).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.conftest import APP_SECRET, PAGE_ID
from tests.test_bot.test_emulator.conftest import TOKEN, V


async def test_version_prefix_is_optional_and_any_version_works(emulator, http) -> None:
    for prefix in ("v19.0/", "v26.0/", ""):
        url = f"{emulator.base_url}{prefix}{PAGE_ID}"
        async with http.get(url, params={"fields": "name", "access_token": TOKEN}) as resp:
            assert resp.status == 200, prefix
            assert (await resp.json())["name"] == "PlusOne Demo Shop"


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
    assert second.value.code == 10900 and second.value.message == "(#10900) Activity already replied to"
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
