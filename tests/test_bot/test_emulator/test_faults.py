"""What makes Graph answers fail: the Send API rate limit per Page, injected faults (next N, seeded share, bare
5xx, held timeouts).

Each test starts a real emulator on a free port (fixtures in conftest.py).
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.conftest import PAGE_ID
from tests.test_bot.test_emulator.conftest import OTHER_PAGE_ID, OTHER_TOKEN, TOKEN, V, error_of, graph, send

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
