"""The token check every Graph surface starts with: unknown, other-Page and expired tokens, appsecret_proof.

Each test starts a real emulator on a free port (fixtures in conftest.py).
"""

from __future__ import annotations

import json

from tests.conftest import DATA, PAGE_ID
from tests.test_bot.test_emulator.conftest import OTHER_TOKEN, TOKEN, V, error_of, graph, proof


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
        # Meta's own answer (tests/data/meta/graph_error_invalid_appsecret_proof.json): a GraphMethodException.
        expected = json.loads((DATA / "meta" / "graph_error_invalid_appsecret_proof.json").read_text())["error"]
        assert resp.status == 400 and set(body["error"]) == set(expected) and body["error"]["fbtrace_id"]
        assert {k: body["error"][k] for k in ("message", "type", "code")} == {
            k: expected[k] for k in ("message", "type", "code")
        }
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
