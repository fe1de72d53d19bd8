"""Graph parameters as Meta takes them: a JSON body, the token in the query or an Authorization header.

Each test starts a real emulator on a free port (fixtures in conftest.py).
"""

from __future__ import annotations

from tests.conftest import PAGE_ID
from tests.test_bot.test_emulator.conftest import TOKEN, V, error_of


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
