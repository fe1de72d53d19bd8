"""Meta's Page-wide answers, played by the emulator: throttling with its usage headers, 368, 10/1893063, a
permission error, 10900 for a second private reply, and a send whose answer is lost after it reached Meta.

Every answer is checked against the sample of Meta's documentation in tests/data/meta/ (code, subcode,
type, wording, header shapes); each test starts a real emulator on a free port (fixtures in conftest.py).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.conftest import DATA, PAGE_ID
from tests.test_bot.test_emulator.conftest import OTHER_PAGE_ID, OTHER_TOKEN, TOKEN, V, error_of, proof, send


def sample(name: str) -> dict[str, Any]:
    data = json.loads((DATA / "meta" / name).read_text())
    assert data["_source"]  # every sample names the Meta page it comes from
    return data


def same_as_sample(status: int, body: dict[str, Any], name: str) -> None:
    """Meta's envelope as the sample has it, but for the per-call trace id."""
    expected = sample(name)
    assert status == expected["_http_status"]
    got = {k: v for k, v in body["error"].items() if k != "fbtrace_id"}
    assert got == {k: v for k, v in expected["error"].items() if k != "fbtrace_id"}
    assert body["error"]["fbtrace_id"]


async def send_with_headers(
    http: aiohttp.ClientSession, emulator: Any, page_id: str = PAGE_ID, token: str = TOKEN
) -> tuple[int, Any, dict[str, str]]:
    form = {"recipient": json.dumps({"id": "7501"}), "message": json.dumps({"text": "hi"})}
    auth = {"access_token": token, "appsecret_proof": proof(token)}
    async with http.post(f"{emulator.base_url}{V}/{page_id}/messages", data={**form, **auth}) as resp:
        return resp.status, await resp.json(), dict(resp.headers)


async def test_a_page_throttle_answers_metas_envelope_and_usage_headers_until_it_ends(emulator, http) -> None:
    await emulator.open_window(PAGE_ID, "7501")
    await emulator.open_window(OTHER_PAGE_ID, "7501")
    await emulator.set_fault("throttle", duration_s=90, scope="page", page_id=PAGE_ID)
    status, body, headers = await send_with_headers(http, emulator)
    same_as_sample(status, body, "graph_error_80006_throttled.json")
    expected = sample("graph_error_80006_throttled.json")["_headers"]
    business = json.loads(headers["X-Business-Use-Case-Usage"])
    assert list(business) == [PAGE_ID]  # keyed by the business object: the Page
    [use_case] = business[PAGE_ID]
    assert set(use_case) == set(next(iter(expected["X-Business-Use-Case-Usage"].values()))[0])
    assert use_case["type"] == "messenger" and use_case["call_count"] == 100
    assert use_case["estimated_time_to_regain_access"] == 2  # 90 s, in whole minutes as Meta gives them
    assert set(json.loads(headers["X-App-Usage"])) == set(expected["X-App-Usage"])
    assert set(json.loads(headers["X-Page-Usage"])) == set(expected["X-Page-Usage"])

    # Only that Page's sending: another Page of the app still sends, and a read of the Page still answers.
    assert (await send_with_headers(http, emulator, OTHER_PAGE_ID, OTHER_TOKEN))[0] == 200
    async with http.get(
        f"{emulator.base_url}{V}/{PAGE_ID}", params={"access_token": TOKEN, "appsecret_proof": proof(TOKEN)}
    ) as resp:
        assert resp.status == 200

    await emulator.set_clock_offset(60)
    status, _, headers = await send_with_headers(http, emulator)
    assert status == 400, "still throttled a minute later"
    assert json.loads(headers["X-Page-Usage"])["estimated_time_to_regain_access"] == 1
    await emulator.set_clock_offset(91)  # the emulator's clock, not the test, waits the 90 s
    assert (await send_with_headers(http, emulator))[0] == 200
    assert await emulator.faults() == []  # a timed fault is gone once it ended


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80000, 80001, 80014])
async def test_throttle_codes(emulator, http, code: int) -> None:
    await emulator.open_window(PAGE_ID, "7501")
    await emulator.set_fault("throttle", code=code, count=1)
    status, body, headers = await send_with_headers(http, emulator)
    assert status == 400 and error_of(body) == (code, None) and body["error"]["message"].startswith(f"(#{code})")
    assert "X-Business-Use-Case-Usage" in headers and json.loads(headers["X-App-Usage"])["call_count"] == 100


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("abusive", "graph_error_368_abusive.json"),
        ("page_restricted", "graph_error_10_1893063_page_restricted.json"),
        ("permission", "graph_error_200_permission.json"),
    ],
)
async def test_page_wide_refusals_match_metas_samples(emulator, http, kind: str, name: str) -> None:
    await emulator.open_window(PAGE_ID, "7501")
    await emulator.set_fault(kind, scope="page", page_id=PAGE_ID)
    status, body = await send(http, emulator, {"id": "7501"})
    same_as_sample(status, body, name)


async def test_a_second_private_reply_is_refused_with_10900(emulator, http) -> None:
    played = await emulator.deliver_comment(PAGE_ID, "2000000000001", "3000000000001", "A+1")
    assert (await send(http, emulator, {"comment_id": played["comment_id"]}))[0] == 200
    status, body = await send(http, emulator, {"comment_id": played["comment_id"]})
    same_as_sample(status, body, "graph_error_10900_already_replied.json")


async def test_timeout_after_delivery_records_the_reply_then_loses_the_answer(emulator, http) -> None:
    played = await emulator.deliver_comment(PAGE_ID, "2000000000001", "3000000000001", "A+1")
    await emulator.set_fault("timeout_after_delivery", count=1, delay_s=0.2, path_contains="/messages")
    status, _ = await send(http, emulator, {"comment_id": played["comment_id"]})
    assert status == 504
    [call] = [c for c in await emulator.calls("/messages") if c["method"] == "POST"]
    assert call["status"] == 504 and call["delivered"]["message_id"]  # Meta did the work
    status, body = await send(http, emulator, {"comment_id": played["comment_id"]})
    assert error_of(body) == (10900, None), "so the retry learns the reply is already there"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"kind": "throttle", "code": 99}, "code must be one of"),
        ({"kind": "abusive", "code": 4}, "code is only for kind throttle"),
        ({"kind": "throttle", "duration_s": 0}, "duration_s must be above 0"),
        ({"kind": "throttle", "duration_s": 5, "next": 1}, "not two of them"),
        ({"kind": "throttle", "scope": "world"}, "scope must be app or page"),
        ({"kind": "throttle", "scope": "page"}, "page_id"),
    ],
)
async def test_bad_fault_requests_are_refused_with_a_reason(emulator, http, body: dict[str, Any], reason: str) -> None:
    async with http.post(f"{emulator.base_url}_emulator/faults", json=body) as resp:
        assert resp.status == 400 and reason in (await resp.json())["error"]
    assert await emulator.faults() == []
