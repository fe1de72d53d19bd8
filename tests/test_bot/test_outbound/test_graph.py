"""The Graph adapter's own transport (issue 18), against the project's Graph emulator on a free port.

The proof of the app secret on every call, Meta's usage headers reaching `SendResult.usage`,
`GraphError.usage` and `last_usage`, an answer that is not JSON, sends that leave the loop free (all in
flight at once, no thread), a client closed from sync code, and the live comments stream over aiohttp.
Each emulator answer used here is checked against Meta's sample in tests/data/meta/.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import warnings
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.emulator.app import GraphEmulator
from bot.emulator.config import EmulatedPage, EmulatorConfig
from bot.outbound.graph import GraphClient, GraphError, GraphErrorClass, appsecret_proof
from tests.conftest import APP_SECRET, DATA, PAGE_ID, wait_until

TOKEN = "page-token-graph"
PSID = "3000000000001"
VIDEO = "7770001"
MESSENGER_LIMIT = 20  # the emulator's Messenger calls a day for these tests: each send is 5% of it


def sample(name: str) -> Any:
    return json.loads((DATA / "meta" / name).read_text())


@pytest.fixture
async def emulator() -> AsyncIterator[GraphEmulator]:
    config = EmulatorConfig(
        pages={PAGE_ID: EmulatedPage(TOKEN, "Test Shop", "testshop")},
        app_secret=APP_SECRET,
        send_echoes=False,
        messenger_calls_per_day=MESSENGER_LIMIT,
        sse_ping_s=0.05,
    )
    async with GraphEmulator(config) as running:
        yield running


@pytest.fixture
async def graph(emulator: GraphEmulator) -> AsyncIterator[GraphClient]:
    client = GraphClient(
        base_url=emulator.base_url, version="v26.0", app_secret=APP_SECRET, page_tokens={PAGE_ID: TOKEN}
    )
    yield client
    await client.aclose()


# --- appsecret_proof --------------------------------------------------------------------------------------


async def test_every_call_carries_the_proof_of_the_app_secret(emulator: GraphEmulator) -> None:
    strict = GraphEmulator(
        EmulatorConfig(pages={PAGE_ID: EmulatedPage(TOKEN)}, app_secret=APP_SECRET, require_appsecret_proof=True)
    )
    async with strict:
        client = GraphClient(
            base_url=strict.base_url, version="v26.0", app_secret=APP_SECRET, page_tokens={PAGE_ID: TOKEN}
        )
        try:
            await strict.open_window(PAGE_ID, PSID)
            assert (await client.send_message(PAGE_ID, {"id": PSID}, {"text": "hi"})).message_id
            assert (await client.fetch_page_info(PAGE_ID)).id == PAGE_ID
            await client.subscribe(PAGE_ID, ["feed"])  # a form POST: the proof travels with it too
        finally:
            await client.aclose()
        assert len(await strict.calls()) == 3  # all three accepted by an app that requires the proof


async def test_a_wrong_app_secret_is_refused_with_metas_answer(emulator: GraphEmulator) -> None:
    wrong = GraphClient(
        base_url=emulator.base_url, version="v26.0", app_secret="not-our-secret", page_tokens={PAGE_ID: TOKEN}
    )
    try:
        with pytest.raises(GraphError) as info:
            await wrong.fetch_page_info(PAGE_ID)
    finally:
        await wrong.aclose()
    expected = sample("graph_error_invalid_appsecret_proof.json")["error"]
    error = info.value
    assert (error.code, error.subcode, error.message) == (expected["code"], None, expected["message"])
    assert error.error_class is GraphErrorClass.INVALID_REQUEST and error.http_status == 400
    assert error.fbtrace_id
    # The emulator's whole envelope is Meta's: same fields, same type.
    answer = (await emulator.calls())[-1]["response"]["error"]
    assert set(answer) == set(expected)
    assert {k: answer[k] for k in ("message", "type", "code")} == {k: expected[k] for k in ("message", "type", "code")}


def test_the_proof_is_hmac_sha256_of_the_token_keyed_by_the_secret() -> None:
    # Meta's "Securing Requests" worked example is not stored; this is RFC 4231's test case 2 instead.
    assert (
        appsecret_proof("Jefe", "what do ya want for nothing?")
        == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


# --- usage headers -------------------------------------------------------------------------------------


async def test_usage_headers_reach_the_send_result_the_error_and_last_usage(
    emulator: GraphEmulator, graph: GraphClient
) -> None:
    assert graph.last_usage(PAGE_ID) is None
    await emulator.open_window(PAGE_ID, PSID)
    results = [await graph.send_message(PAGE_ID, {"id": PSID}, {"text": f"#{i}"}) for i in range(3)]
    # 3 of the Page's 20 Messenger calls a day: 15%, the highest of the three headers.
    assert [r.usage.percent if r.usage else None for r in results] == [5.0, 10.0, 15.0]
    assert results[-1].usage is not None and results[-1].usage.regain_access_s == 0.0
    assert graph.last_usage(PAGE_ID) == results[-1].usage
    with pytest.raises(GraphError) as info:
        await graph.send_message(PAGE_ID, {"id": "3000000000999"}, {"text": "no window"})  # refused calls count too
    assert info.value.error_class is GraphErrorClass.OUTSIDE_WINDOW
    assert info.value.usage is not None and info.value.usage.percent == 20.0
    assert graph.last_usage(PAGE_ID) == info.value.usage


async def test_the_emulators_usage_headers_have_metas_shape(emulator: GraphEmulator) -> None:
    expected = sample("graph_usage_headers.json")["headers"]
    await emulator.open_window(PAGE_ID, PSID)
    url = f"{emulator.base_url}v26.0/{PAGE_ID}/messages"
    params = {"access_token": TOKEN, "appsecret_proof": appsecret_proof(APP_SECRET, TOKEN)}
    body = {"recipient": {"id": PSID}, "message": {"text": "hi"}, "messaging_type": "RESPONSE"}
    async with aiohttp.ClientSession() as http, http.post(url, params=params, json=body) as resp:
        assert resp.status == 200
        headers = {name: json.loads(resp.headers[name]) for name in expected}
    for name in ("X-App-Usage", "X-Page-Usage"):
        assert set(headers[name]) == set(expected[name]) and all(isinstance(v, int) for v in headers[name].values())
    [(business, entries)] = headers["X-Business-Use-Case-Usage"].items()
    [template] = next(iter(expected["X-Business-Use-Case-Usage"].values()))
    assert business == PAGE_ID and len(entries) == 1
    assert set(entries[0]) == set(template) and entries[0]["type"] == "messenger"
    assert entries[0]["call_count"] == 100 // MESSENGER_LIMIT


# --- answers that are not Meta's ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503])
async def test_a_proxys_page_instead_of_json_is_retried_later(
    emulator: GraphEmulator, graph: GraphClient, status: int
) -> None:
    await emulator.open_window(PAGE_ID, PSID)
    await emulator.set_fault("server_error", count=1, status=status, path_contains="/messages")
    with pytest.raises(GraphError) as info:
        await graph.send_message(PAGE_ID, {"id": PSID}, {"text": "hi"})
    error = info.value
    assert error.error_class is GraphErrorClass.RETRY_LATER and error.http_status == status
    assert error.code is None and "not JSON" in error.message
    assert (await graph.send_message(PAGE_ID, {"id": PSID}, {"text": "hi"})).message_id  # the fault is spent


async def test_an_unreachable_graph_is_retried_later() -> None:
    client = GraphClient(base_url="http://127.0.0.1:9/", version="v26.0", app_secret=None, page_tokens={PAGE_ID: "t"})
    try:
        with pytest.raises(GraphError) as info:
            await client.fetch_page_info(PAGE_ID)
    finally:
        await client.aclose()
    assert info.value.error_class is GraphErrorClass.RETRY_LATER and info.value.http_status is None


# --- the loop stays free ----------------------------------------------------------------------------------


async def test_sends_wait_on_the_loop_all_at_once_without_threads(emulator: GraphEmulator, graph: GraphClient) -> None:
    """While Meta holds 40 answers, all 40 sends are in flight and the loop runs other work.

    The threaded client it replaced had 16 threads, so at most 16 calls could be waiting on Meta at once.
    """
    await emulator.open_window(PAGE_ID, PSID)
    await graph.fetch_page_info(PAGE_ID)  # the connection pool is made; nothing else starts from here on
    threads = threading.active_count()
    await emulator.set_fault("timeout", count=40, delay_s=60, path_contains="/messages")
    sends = [asyncio.create_task(graph.send_message(PAGE_ID, {"id": PSID}, {"text": f"#{i}"})) for i in range(40)]
    ticks = 0

    async def all_in_flight() -> bool:
        nonlocal ticks
        ticks += 1  # the loop keeps running this test while every send waits on Meta
        return sum(1 for call in await emulator.calls("/messages") if call["status"] == 504) == 40

    try:
        await wait_until(all_in_flight, limit=30, what="40 sends waiting on Meta at once")
        assert not any(task.done() for task in sends) and ticks >= 1
        assert threading.active_count() == threads
    finally:
        for task in sends:
            task.cancel()
        await asyncio.gather(*sends, return_exceptions=True)


# --- closing -----------------------------------------------------------------------------------------------


async def test_close_from_sync_code_then_the_client_opens_a_new_pool(emulator: GraphEmulator) -> None:
    client = GraphClient(
        base_url=emulator.base_url, version="v26.0", app_secret=APP_SECRET, page_tokens={PAGE_ID: TOKEN}
    )
    assert (await client.fetch_page_info(PAGE_ID)).name == "Test Shop"
    client.close()  # no await: what the app's sync shutdown paths call
    client.close()  # twice is harmless
    assert (await client.fetch_page_info(PAGE_ID)).name == "Test Shop"
    await client.aclose()


def test_a_client_whose_loop_has_ended_closes_from_sync_code_without_warnings() -> None:
    async def use(client: GraphClient) -> str:
        async with GraphEmulator(EmulatorConfig(pages={PAGE_ID: EmulatedPage(TOKEN)}, app_secret=APP_SECRET)) as em:
            client.base_url = em.base_url
            return (await client.fetch_page_info(PAGE_ID)).id

    client = GraphClient(
        base_url="http://unused/", version="v26.0", app_secret=APP_SECRET, page_tokens={PAGE_ID: TOKEN}
    )
    assert asyncio.run(use(client)) == PAGE_ID
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client.close()  # the worker's and the app's last word, after their loop is gone
        gc.collect()  # an unclosed session or connector would say so when collected
    assert [str(w.message) for w in caught] == []


# --- the live comments stream ------------------------------------------------------------------------------


async def test_the_stream_hands_lines_to_the_callback_and_returns_when_meta_ends_it(
    emulator: GraphEmulator, graph: GraphClient
) -> None:
    await emulator.live_video(PAGE_ID, VIDEO, webhook=False)
    lines: list[bytes] = []
    got_ping = asyncio.Event()

    def on_line(line: bytes) -> None:
        lines.append(line)
        if line.startswith(b":"):
            got_ping.set()

    stream = graph.open_live_comments(
        PAGE_ID, VIDEO, on_line, comment_rate="ten_per_second", fields="from{name,id},message", read_timeout_s=30
    )
    run = asyncio.create_task(stream.run())
    await asyncio.wait_for(got_ping.wait(), 10)
    await emulator.live_comment(VIDEO, "91", "A+1", to=("stream",), created_time=1_700_000_000)
    await emulator.live_video(PAGE_ID, VIDEO, status="vod", webhook=False)  # Meta ends the stream
    await asyncio.wait_for(run, 10)
    data = [line for line in lines if line.startswith(b"data: ")]
    assert len(data) == 1 and json.loads(data[0][len(b"data: ") :])["message"] == "A+1"
    assert b"" in lines  # the blank line that ends an event is passed on
    call = (await emulator.calls(f"{VIDEO}/live_comments"))[-1]
    assert call["params"]["live_filter"] == "no_filter" and call["params"]["comment_rate"] == "ten_per_second"
    assert call["params"]["appsecret_proof"] == "REDACTED"  # sent, and kept out of the record


async def test_a_refused_stream_raises_and_close_stops_a_quiet_one_at_once(
    emulator: GraphEmulator, graph: GraphClient
) -> None:
    stream = graph.open_live_comments(
        PAGE_ID, "404", lambda _line: None, comment_rate="ten_per_second", fields="message", read_timeout_s=30
    )
    with pytest.raises(GraphError) as info:
        await stream.run()
    assert info.value.code == 100 and info.value.http_status == 400
    await emulator.live_video(PAGE_ID, VIDEO, webhook=False)
    connected = asyncio.Event()
    quiet = graph.open_live_comments(
        PAGE_ID,
        VIDEO,
        lambda _line: connected.set(),
        comment_rate="one_per_two_seconds",
        fields="message",
        read_timeout_s=300,
    )
    run = asyncio.create_task(quiet.run())
    await asyncio.wait_for(connected.wait(), 10)
    quiet.close()
    await asyncio.wait_for(run, 5)  # returns, neither raising nor waiting for the read timeout
    assert run.exception() is None


# --- the verbs new methods are built on ----------------------------------------------------------------------


async def test_the_four_verbs_keep_python_facebook_apis_meaning(emulator: GraphEmulator, graph: GraphClient) -> None:
    await graph._call(
        PAGE_ID, "post_object", object_id=PAGE_ID, connection="subscribed_apps", data={"subscribed_fields": "feed"}
    )
    assert await graph.fetch_subscribed_fields(PAGE_ID) == ["feed"]
    page = await graph._call(PAGE_ID, "get_object", object_id=PAGE_ID, fields="name")
    assert page == {"id": PAGE_ID, "name": "Test Shop"}
    assert await graph._call(PAGE_ID, "delete_object", object_id=PAGE_ID, connection="subscribed_apps") == {
        "success": True
    }
    listed = await graph._call(PAGE_ID, "get_connection", object_id=PAGE_ID, connection="subscribed_apps")
    assert listed == {"data": []}
    with pytest.raises(ValueError):
        await graph._call(PAGE_ID, "put_object", object_id=PAGE_ID)
