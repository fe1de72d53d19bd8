"""Live comments from every source: the webhook, Meta's Live Comments stream and the comments edge.

Pure parts (SSE decoding, the converter) by tables; the reader with the whole bot against the Graph
emulator, a real Redis and SQLite: one comment by three ways is handled once, a dropped stream comes back
and polling catches what it missed, and reading stops when the broadcast ends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.emulator.app import GraphEmulator
from bot.emulator.config import EmulatedPage, EmulatorConfig
from bot.emulator.control import EmulatorError
from bot.inbound import webhook_factory as wf
from bot.inbound.events import CommentEvent, LiveVideoEvent
from bot.inbound.ingest import IngestStream
from bot.inbound.live_comments import ActiveVideo, LiveCommentReader, LiveReaderSettings
from bot.inbound.live_payloads import SseDecoder, live_comment_delivery, parse_graph_time, parse_live_comment_event
from bot.inbound.live_status import LivePhase, live_phase
from bot.inbound.payloads import parse_delivery
from bot.inbox.board import fetch_board
from bot.outbound.graph import GraphClient
from bot.runtime.clock import utcnow
from bot.runtime.metrics import event_field
from bot.runtime.redis_keys import RedisKeys
from bot.services import INGEST, REDIS
from bot.store.tables import CommentLog, LiveVideo
from carts.tables import Campaign, CampaignProduct, Product, StockClaim
from tests.conftest import ADMIN_TOKEN, APP_SECRET, PAGE_ID, load_sample, wait_until
from tests.test_bot.stack import TOKEN, Stack, sends, start_stack

VIDEO = "7770001"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

# --- SSE decoding (pure) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "events"),
    [
        pytest.param([b'data: {"id": "1"}', b""], ['{"id": "1"}'], id="one event"),
        pytest.param([b": ping", b"", b": ping"], [], id="keep-alives only"),
        pytest.param([b'data: {"id":', b'data: "1"}', b""], ['{"id":\n"1"}'], id="data lines joined"),
        pytest.param(
            [b"event: comment", b"id: 5", b"retry: 10", b'data: {"id": "2"}', b""], ['{"id": "2"}'], id="fields"
        ),
        pytest.param([b'data: {"id": "1"}', b'data: {"id": "2"}', b""], ['{"id": "1"}', '{"id": "2"}'], id="no blank"),
        pytest.param([b'data:{"id": "3"}\r\n', b"\r\n"], ['{"id": "3"}'], id="crlf, no space"),
        pytest.param([b'data: {"message": "\xe8\xb2\xb7"}', b""], ['{"message": "買"}'], id="utf-8"),
        pytest.param([b"", b"", b'data: {"id": "4"}', b": ping", b""], ['{"id": "4"}'], id="ping inside"),
    ],
)
def test_sse_decoder(lines: list[bytes], events: list[str]) -> None:
    decoder = SseDecoder()
    assert [data for line in lines for data in decoder.feed(line)] == events


def test_sse_decoder_flushes_a_whole_event_at_the_end_and_drops_a_broken_one() -> None:
    decoder = SseDecoder()
    assert decoder.feed('data: {"id": "9"}') == []
    assert decoder.flush() == ['{"id": "9"}']
    decoder.feed('data: {"id": ')
    assert decoder.flush() == []
    assert decoder.flush() == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"id": "1_2", "message": "A+1"}', {"id": "1_2", "message": "A+1"}),
        ('{"message": "no id"}', None),
        ("[1, 2]", None),
        ("not json", None),
        ('{"id": true}', None),
    ],
)
def test_parse_live_comment_event(data: str, expected: dict[str, Any] | None) -> None:
    assert parse_live_comment_event(data) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2022-08-31T09:09:39+0000", 1661936979),
        ("2022-08-31T09:09:39+00:00", 1661936979),
        ("2022-08-31T17:09:39+0800", 1661936979),
        (1661936979, 1661936979),
        ("1661936979", 1661936979),
        ("2022-08-31T09:09:39", None),  # no offset: which zone is unknowable
        ("yesterday", None),
        (None, None),
        (True, None),
        (-5, None),
    ],
)
def test_parse_graph_time(value: Any, expected: int | None) -> None:
    assert parse_graph_time(value) == expected


# --- the converter (pure) --------------------------------------------------------------------------------


def test_metas_sample_event_becomes_the_feed_change_the_webhook_would_bring() -> None:
    event = json.loads(load_sample("live_comment_sse_event.json"))
    delivery = live_comment_delivery("555", "610800597327576", event, received_s=1661936990)
    assert delivery == {
        "object": "page",
        "entry": [
            {
                "id": "555",
                "time": 1661936990,
                "changes": [
                    {
                        "field": "feed",
                        "value": {
                            "item": "comment",
                            "verb": "add",
                            "comment_id": "610800597327576_364546219223792",
                            "post_id": "555_610800597327576",
                            "parent_id": "555_610800597327576",
                            "from": {"id": "413140042878187", "name": "Kun Liu"},
                            "created_time": 1661936979,
                            "message": "wow",
                        },
                    }
                ],
            }
        ],
    }


def _event(delivery: dict[str, Any]) -> CommentEvent:
    [event] = parse_delivery(wf.encode(delivery))
    assert isinstance(event, CommentEvent)
    return event


def test_a_live_comment_has_the_same_event_key_as_its_webhook() -> None:
    webhook = _event(
        wf.comment_delivery(
            page_id=PAGE_ID,
            post_id=f"{PAGE_ID}_{VIDEO}",
            message="A+1",
            user_id="3000000000001",
            comment_id=f"{VIDEO}_42",
            created_time=1700000000,
        )
    )
    for raw_id in (f"{VIDEO}_42", "42"):  # the stream's form, and a bare id
        comment = {
            "id": raw_id,
            "created_time": "2023-11-14T22:13:20+0000",
            "from": {"id": "3000000000001", "name": "Shopper"},
            "message": "A+1",
        }
        delivery = live_comment_delivery(PAGE_ID, VIDEO, comment, received_s=1700000001)
        assert delivery is not None
        live = _event(delivery)
        assert (live.key, live.post_id, live.parent_id, live.author_id, live.message, live.created_time) == (
            webhook.key,
            webhook.post_id,
            webhook.parent_id,
            webhook.author_id,
            webhook.message,
            webhook.created_time,
        )
        assert not live.is_reply and not live.from_page


@pytest.mark.parametrize(
    ("comment", "check"),
    [
        ({"id": f"{VIDEO}_1", "from": {"id": PAGE_ID, "name": "Shop"}, "message": "Thanks!"}, "from_page"),
        ({"id": f"{VIDEO}_2", "parent": {"id": f"{VIDEO}_1"}, "from": {"id": "9"}, "message": "A+1"}, "reply"),
        ({"id": f"{VIDEO}_3", "message": "A+1"}, "no author"),
        ({"id": f"{VIDEO}_4", "from": {"id": "9"}}, "no message"),
    ],
)
def test_converted_comments_keep_what_the_worker_decides_on(comment: dict[str, Any], check: str) -> None:
    delivery = live_comment_delivery(PAGE_ID, VIDEO, comment, received_s=1)
    assert delivery is not None
    event = _event(delivery)
    if check == "from_page":
        assert event.from_page  # the Page's own comment: logged, never fed to the bot
    elif check == "reply":
        assert event.is_reply and event.parent_id == f"{VIDEO}_1"
    elif check == "no author":
        assert event.author_id is None  # never invented
    else:
        assert event.message == "" and event.created_time is None


def test_a_comment_without_an_id_is_not_converted() -> None:
    assert live_comment_delivery(PAGE_ID, VIDEO, {"message": "A+1"}, received_s=1) is None


# --- with the whole bot ----------------------------------------------------------------------------------


@pytest.fixture
async def live_stack(aiohttp_client, tmp_path: Path, redis_server) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    """The whole bot, looking for live videos and polling often, so the stories run quickly."""
    async for running in start_stack(
        aiohttp_client,
        tmp_path,
        redis_server,
        fallback_cooldown_s=3600,
        live_check_interval_s=0.1,
        live_poll_interval_s=0.3,
        live_reconnect_min_s=0.05,
        live_reconnect_max_s=0.4,
    ):
        await seed_live_campaign(running)
        yield running


async def seed_live_campaign(stack: Stack, *, ends_in: timedelta = timedelta(hours=3)) -> None:
    """Rose bouquet (`rose+2`) on the Page's next live."""
    now = utcnow()
    async with stack.sessions() as session, session.begin():
        product = Product(code="A", name="Rose bouquet", price=Decimal("380"), stock=10, created_at=now, updated_at=now)
        campaign = Campaign(
            key="tonight",
            title="Tonight's live",
            page_id=PAGE_ID,
            next_live=True,
            starts_at=now - timedelta(minutes=5),
            ends_at=now + ends_in,
            hold_minutes=15,
            created_at=now,
            updated_at=now,
        )
        session.add_all([product, campaign])
        await session.flush()
        session.add(CampaignProduct(campaign_id=campaign.id, product_id=product.id, order_code="Rose"))  # type: ignore[arg-type]


async def open_streams(stack: Stack) -> int:
    return sum(v["open_streams"] for v in await stack.emulator.live_videos() if v["id"] == VIDEO)


async def go_live(stack: Stack) -> None:
    """The broadcast starts (Meta's `live_videos` webhook) and the reader connects to its stream."""
    reply = await stack.emulator.live_video(PAGE_ID, VIDEO)
    assert reply["status"] == 200

    async def connected() -> bool:
        return await open_streams(stack) == 1

    await wait_until(connected, what="the reader's live comments stream")


async def private_replies(stack: Stack, comment_id: str | None = None) -> list[dict[str, Any]]:
    return [
        c
        for c in await sends(stack)
        if c["status"] == 200
        and "comment_id" in c["body"]["recipient"]
        and comment_id in (None, c["body"]["recipient"]["comment_id"])
    ]


async def replied_to(stack: Stack, comment_id: str) -> None:
    async def done() -> bool:
        return len(await private_replies(stack, comment_id)) >= 1

    await wait_until(done, what=f"the private reply to {comment_id}")


async def count(stack: Stack, stmt: Any) -> int:
    async with stack.sessions() as session:
        return int((await session.execute(stmt)).scalar_one())


async def comment_duplicates(stack: Stack) -> int:
    counters = await stack.client.app[INGEST].counters()
    return int(counters.get(event_field("comment", "duplicate").encode(), b"0"))


async def polled(stack: Stack, comment_id: str) -> bool:
    """Whether a poll of the comments edge has listed the comment."""
    for call in await stack.emulator.calls(f"{VIDEO}/comments"):
        listed = call["response"].get("data", []) if isinstance(call["response"], dict) else []
        if any(c["id"] == comment_id for c in listed):
            return True
    return False


async def test_the_same_live_comment_by_webhook_stream_and_poll_is_handled_once(live_stack: Stack) -> None:
    await go_live(live_stack)
    posted = await live_stack.emulator.live_comment(VIDEO, "3000000000301", "rose+2")
    assert posted["status"] == 200 and posted["streams"] == 1 and posted["comments_edge"]
    comment_id = posted["comment_id"]

    async def all_three_seen() -> bool:
        return await polled(live_stack, posted["video_comment_id"]) and await comment_duplicates(live_stack) >= 1

    # The webhook's copy and the reader's (stream or poll, whichever came first: the reader appends a
    # comment once) both reach the worker; the poll lists it too.
    await wait_until(all_three_seen, what="the stream's and the poll's copies")
    await replied_to(live_stack, comment_id)
    # A comment the stream misses: the webhook's copy and the poll's.
    unstreamed = await live_stack.emulator.live_comment(VIDEO, "3000000000302", "rose+1", to=("webhook", "comments"))

    async def both_seen() -> bool:
        return await comment_duplicates(live_stack) >= 2

    await wait_until(both_seen, what="the poll's copy of the comment the stream missed")
    await replied_to(live_stack, unstreamed["comment_id"])
    # The Page answers on the live: its comment comes by stream and poll too, and is only logged.
    own = await live_stack.emulator.live_comment(VIDEO, PAGE_ID, "rose+1 for everyone!", to=("stream", "comments"))

    async def own_logged() -> bool:
        return await count(live_stack, select(func.count()).where(CommentLog.comment_id == own["comment_id"])) == 1

    await wait_until(own_logged, what="the Page's own live comment in the comment log")
    for cid in (comment_id, unstreamed["comment_id"]):
        assert await count(live_stack, select(func.count()).where(CommentLog.comment_id == cid)) == 1
        assert len(await private_replies(live_stack, cid)) == 1
    assert await count(live_stack, select(func.sum(StockClaim.qty))) == 3
    assert await private_replies(live_stack, own["comment_id"]) == []
    [outcome] = await live_stack.rows(select(CommentLog.outcome).where(CommentLog.comment_id == own["comment_id"]))
    assert outcome == "ignored"


async def test_a_dropped_stream_reconnects_and_polling_catches_what_it_missed(live_stack: Stack) -> None:
    await go_live(live_stack)
    # The stream breaks and Meta refuses reconnections for a while.
    await live_stack.emulator.set_fault("server_error", path_contains="live_comments")
    assert await live_stack.emulator.drop_live_streams(VIDEO) == 1

    async def down() -> bool:
        return await open_streams(live_stack) == 0

    await wait_until(down, what="the stream to drop")
    missed = await live_stack.emulator.live_comment(VIDEO, "3000000000302", "rose+1", to=("stream", "comments"))
    assert missed["streams"] == 0  # nobody was listening
    await replied_to(live_stack, missed["comment_id"])  # polling caught it

    refused = [c for c in await live_stack.emulator.calls("live_comments") if c["status"] == 500]
    assert refused, "the reader kept trying to reconnect"
    await live_stack.emulator.clear_faults()

    async def back() -> bool:
        return await open_streams(live_stack) == 1

    await wait_until(back, what="the stream to reconnect")
    streamed = await live_stack.emulator.live_comment(VIDEO, "3000000000303", "rose+1", to=("stream",))
    assert streamed["streams"] == 1
    await replied_to(live_stack, streamed["comment_id"])  # only the stream carried this one
    assert await count(live_stack, select(func.count()).select_from(CommentLog)) == 2


@pytest.fixture
async def rare_poll_stack(aiohttp_client, tmp_path: Path, redis_server) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    """Polling rarely: only a reader's first poll and its last one (at the end) read the comments edge."""
    async for running in start_stack(
        aiohttp_client, tmp_path, redis_server, live_check_interval_s=0.1, live_poll_interval_s=600
    ):
        yield running


async def test_the_reader_stops_when_the_video_ends_after_a_last_poll(rare_poll_stack: Stack) -> None:
    stack = rare_poll_stack
    await seed_live_campaign(stack)
    await go_live(stack)

    async def first_poll() -> bool:
        return any(c["status"] == 200 for c in await stack.emulator.calls(f"{VIDEO}/comments"))

    await wait_until(first_poll, what="the first poll")
    late = await stack.emulator.live_comment(VIDEO, "3000000000304", "rose+1", to=("comments",))
    assert (await stack.emulator.live_video(PAGE_ID, VIDEO, status="vod"))["status"] == 200
    await replied_to(stack, late["comment_id"])  # read by the last poll

    lease = RedisKeys(stack.settings.key_prefix).live_reader(VIDEO)

    async def released() -> bool:
        return await stack.client.app[REDIS].get(lease) is None

    await wait_until(released, what="the reader to stop and hand back its lease")
    polls = len(await stack.emulator.calls(f"{VIDEO}/comments"))
    connects = len(await stack.emulator.calls("live_comments"))
    async with stack.sessions() as session:
        video = await session.get(LiveVideo, VIDEO)
        assert video is not None and video.status == "vod" and video.ended_at is not None
    await asyncio.sleep(0.5)  # several of the readers' checks: none starts reading again
    assert await stack.client.app[REDIS].get(lease) is None
    assert len(await stack.emulator.calls(f"{VIDEO}/comments")) == polls
    assert len(await stack.emulator.calls("live_comments")) == connects


async def test_the_merchant_starts_and_stops_reading_a_live_video(live_stack: Stack) -> None:
    await live_stack.emulator.live_video(PAGE_ID, VIDEO, webhook=False)  # this Page sends no live_videos webhook
    client = live_stack.client
    for body, status in [
        ({"campaign": "nope", "video_id": VIDEO}, 404),
        ({"campaign": "tonight", "video_id": "abc"}, 400),
        ({"campaign": "tonight"}, 400),
        ({"campaign": "tonight", "video_id": VIDEO, "extra": 1}, 400),
    ]:
        resp = await client.post("/api/live-videos", json=body, headers=ADMIN)
        assert resp.status == status, await resp.text()
        assert "error" in await resp.json()
    assert (await client.post("/api/live-videos", json={"campaign": "tonight", "video_id": VIDEO})).status == 401
    assert await live_stack.rows(select(LiveVideo)) == []

    resp = await client.post("/api/live-videos", json={"campaign": "tonight", "video_id": VIDEO}, headers=ADMIN)
    assert resp.status == 201, await resp.text()

    async def connected() -> bool:
        return await open_streams(live_stack) == 1

    await wait_until(connected, what="the reader's stream")
    streamed = await live_stack.emulator.live_comment(VIDEO, "3000000000305", "rose+1", to=("stream",))
    await replied_to(live_stack, streamed["comment_id"])
    listed = await (await client.get("/api/live-videos", headers=ADMIN)).json()
    [video] = listed["live_videos"]
    assert (video["video_id"], video["status"], video["phase"], video["started_by"]) == (
        VIDEO,
        "live",
        "live",
        "merchant",
    )
    [emulated] = await live_stack.emulator.live_videos()
    assert video["post_id"] in (None, emulated["post_id"])  # learned from Meta as reading began
    assert video["reader"] is not None

    resp = await client.post(f"/api/live-videos/{VIDEO}/stop", headers=ADMIN)
    stopped_video = (await resp.json())["video"]
    assert resp.status == 200 and (stopped_video["status"], stopped_video["phase"]) == ("live_stopped", "ended")

    async def stopped() -> bool:
        [row] = (await (await client.get("/api/live-videos", headers=ADMIN)).json())["live_videos"]
        return row["reader"] is None

    await wait_until(stopped, what="the reader to stop")
    again = await client.post("/api/live-videos", json={"campaign": "tonight", "video_id": VIDEO}, headers=ADMIN)
    assert again.status == 409  # an ended broadcast does not go live again
    assert (await client.post("/api/live-videos/999/stop", headers=ADMIN)).status == 404


async def test_a_restarted_reader_polls_from_its_cursor_not_from_the_start(live_stack: Stack) -> None:
    emulator = live_stack.emulator
    await emulator.live_video(PAGE_ID, "8880001", webhook=False)  # no campaign: nothing reads it by itself
    start = utcnow().timestamp() - 600
    for i in range(3):
        await emulator.live_comment(
            "8880001", f"30000000004{i}", "rose+1", to=("comments",), created_time=start + 100 * i
        )
    settings = live_stack.settings
    graph = GraphClient(
        base_url=settings.graph_url, version=settings.graph_version, app_secret=APP_SECRET, page_tokens={PAGE_ID: TOKEN}
    )
    redis = live_stack.client.app[REDIS]
    ingest = IngestStream(redis, RedisKeys(settings.key_prefix + "x"))  # a stream no worker reads
    reader_settings = LiveReaderSettings(poll_limit=2, poll_overlap_s=10)
    video = ActiveVideo("8880001", PAGE_ID)
    try:
        first = LiveCommentReader(video, graph, ingest, redis, RedisKeys(settings.key_prefix + "x"), reader_settings)
        assert await first.poll_once() == 3  # two pages of at most two comments
        assert await first.poll_once() == 0  # nothing new, and nothing appended twice
        assert await redis.xlen(ingest.keys.ingest_stream) == 3
        restarted = LiveCommentReader(
            video, graph, ingest, redis, RedisKeys(settings.key_prefix + "x"), reader_settings
        )
        assert await restarted.poll_once() == 1  # only the newest, inside the overlap
    finally:
        graph.close()
    calls = await emulator.calls("8880001/comments")
    assert calls[-1]["params"]["since"] == str(int(start) + 200 - 10)
    assert "since" not in calls[0]["params"] and calls[1]["params"].get("after")


# --- the emulator's side of it ---------------------------------------------------------------------------

OTHER_PAGE = "1000000000002"


@pytest.fixture
async def emulator() -> AsyncIterator[GraphEmulator]:
    pages = {PAGE_ID: EmulatedPage(TOKEN), OTHER_PAGE: EmulatedPage("other-token")}
    async with GraphEmulator(EmulatorConfig(pages=pages, app_secret=APP_SECRET, sse_ping_s=0.2)) as running:
        yield running


async def get(emulator: GraphEmulator, path: str, **params: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(emulator.base_url + "v26.0/" + path, params={"access_token": TOKEN, **params}) as resp,
    ):
        return resp.status, await resp.json()


async def test_the_emulators_comments_edge_pages_like_meta(emulator: GraphEmulator) -> None:
    await emulator.live_video(PAGE_ID, VIDEO, webhook=False)
    ids = []
    for i in range(3):
        posted = await emulator.live_comment(
            VIDEO, f"9{i}", f"comment {i}", to=("comments",), created_time=1_700_000_000 + i
        )
        ids.append(posted["video_comment_id"])
    reply = await emulator.live_comment(
        VIDEO, "99", "a reply", to=("comments",), parent_id=ids[0], created_time=1_700_000_003
    )
    status, first = await get(emulator, f"{VIDEO}/comments", limit="2")
    assert status == 200 and [c["id"] for c in first["data"]] == ids[:2]  # top-level only by default
    assert first["data"][0] == {
        "id": ids[0],
        "created_time": "2023-11-14T22:13:20+0000",
        "from": {"name": "Viewer", "id": "90"},
        "message": "comment 0",
    }
    status, rest = await get(emulator, f"{VIDEO}/comments", limit="2", after=first["paging"]["cursors"]["after"])
    assert [c["id"] for c in rest["data"]] == [ids[2]] and "next" not in rest["paging"]
    assert "after=" in first["paging"]["next"]
    _, everything = await get(emulator, f"{VIDEO}/comments", filter="stream", order="reverse_chronological")
    assert [c["id"] for c in everything["data"]] == [reply["video_comment_id"], *reversed(ids)]
    _, recent = await get(emulator, f"{VIDEO}/comments", since="1700000002", filter="stream", fields="message")
    assert recent["data"] == [
        {"id": ids[2], "message": "comment 2"},
        {"id": reply["video_comment_id"], "message": "a reply"},
    ]


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        (f"{VIDEO}/comments", {"order": "random"}, 100),
        (f"{VIDEO}/comments", {"limit": "0"}, 100),
        (f"{VIDEO}/comments", {"after": "bm90LWEtY29tbWVudA"}, 100),
        (f"{VIDEO}/comments", {"since": "soon"}, 100),
        (f"{VIDEO}/comments", {"access_token": "other-token"}, 190),  # another Page's token
        ("123/comments", {}, 100),  # no such live video
        (f"{VIDEO}/live_comments", {"comment_rate": "all"}, 100),
        (f"{VIDEO}/live_comments", {"access_token": "nope"}, 190),
    ],
)
async def test_the_emulator_refuses_bad_live_requests_in_metas_envelope(
    emulator: GraphEmulator, path: str, params: dict[str, str], code: int
) -> None:
    await emulator.live_video(PAGE_ID, VIDEO, webhook=False)
    status, body = await get(emulator, path, **params)
    assert status == 400 and body["error"]["code"] == code


async def test_the_emulators_stream_sends_meta_shaped_events_and_ends_with_the_video(emulator: GraphEmulator) -> None:
    await emulator.live_video(PAGE_ID, VIDEO, webhook=False)
    url = emulator.base_url + f"{VIDEO}/live_comments"
    params = {"access_token": TOKEN, "fields": "from{name,id},message", "live_filter": "no_filter"}
    async with aiohttp.ClientSession() as http, http.get(url, params=params) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        assert await resp.content.readline() == b": ping\n"  # keep-alive while nobody comments
        posted = await emulator.live_comment(VIDEO, "91", "A+1", to=("stream",), created_time=1_700_000_000)
        lines = [await resp.content.readline() for _ in range(3)]
        data = next(line for line in lines if line.startswith(b"data: "))
        event = json.loads(data[len(b"data: ") :])
        assert {k: event[k] for k in ("id", "created_time", "from", "message")} == {
            "id": posted["video_comment_id"],
            "created_time": "2023-11-14T22:13:20+0000",
            "from": {"name": "Viewer", "id": "91"},
            "message": "A+1",
        }
        assert event["object"]["id"] == VIDEO
        await emulator.live_video(PAGE_ID, VIDEO, status="vod", webhook=False)
        assert await resp.content.read() in (b"", b": ping\n\n")  # then the stream ends
    status, body = await get(emulator, f"{VIDEO}/live_comments")
    assert status == 400 and "not broadcasting" in body["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("live_videos", {"page_id": "404"}),
        ("live_videos", {"page_id": PAGE_ID, "status": "paused"}),
        ("live_videos", {"page_id": OTHER_PAGE, "video_id": VIDEO}),  # the video is the first Page's
        ("live_comments", {"video_id": "404", "user_id": "9", "message": "A+1"}),
        ("live_comments", {"video_id": VIDEO, "user_id": "9"}),
        ("live_comments", {"video_id": VIDEO, "user_id": "9", "message": "A+1", "to": ["fax"]}),
        ("live_comments", {"video_id": VIDEO, "user_id": "9", "message": "A+1", "to": []}),
        ("live_streams/drop", {"video_id": VIDEO, "how": "gently"}),
    ],
)
async def test_the_emulators_live_controls_refuse_bad_input(
    emulator: GraphEmulator, path: str, body: dict[str, Any]
) -> None:
    await emulator.live_video(PAGE_ID, VIDEO, webhook=False)
    with pytest.raises(EmulatorError, match="400"):
        await emulator._control("POST", path, body)
    assert [(v["id"], v["status"], v["comments"]) for v in await emulator.live_videos()] == [(VIDEO, "live", 0)]


# --- Meta's live video statuses (issue 18, item 5) --------------------------------------------------------

# What each status Meta documents means (docs/meta-platform.md, "Live video ids and statuses").
DOCUMENTED_PHASES = {
    "unpublished": LivePhase.SCHEDULED,
    "scheduled_unpublished": LivePhase.SCHEDULED,
    "scheduled_live": LivePhase.SCHEDULED,
    "scheduled_canceled": LivePhase.ENDED,
    "scheduled_expired": LivePhase.ENDED,
    "live_now": LivePhase.LIVE,
    "live": LivePhase.LIVE,
    "live_stopped": LivePhase.ENDED,
    "processing": LivePhase.ENDED,
    "vod": LivePhase.ENDED,
}


def status_samples() -> list[dict[str, Any]]:
    return list(json.loads(load_sample("live_videos_statuses.json"))["deliveries"])


def test_every_status_in_metas_samples_has_its_documented_phase_in_either_spelling() -> None:
    seen = set()
    for delivery in status_samples():
        [event] = parse_delivery(wf.encode(delivery))
        assert isinstance(event, LiveVideoEvent)
        expected = DOCUMENTED_PHASES[event.status]
        assert live_phase(event.status) is expected
        assert live_phase(event.status.upper()) is expected  # the Graph API's capitals (`LIVE_NOW`)
        seen.add(event.status)
    assert seen == set(DOCUMENTED_PHASES)
    assert live_phase("paused_for_ads") is LivePhase.UNKNOWN


async def test_a_scheduled_video_is_not_ended_and_its_later_live_starts_it(live_stack: Stack) -> None:
    emulator = live_stack.emulator
    for status in ("scheduled_unpublished", "SCHEDULED_LIVE"):  # the webhook's spelling and the Graph API's
        assert (await emulator.live_video(PAGE_ID, VIDEO, status=status))["status"] == 200

    async def scheduled() -> bool:
        return [row.status for row in await live_stack.rows(select(LiveVideo))] == ["scheduled_live"]

    await wait_until(scheduled, what="the schedule recorded")
    async with live_stack.sessions() as session:
        row = await session.get(LiveVideo, VIDEO)
        assert row is not None and row.ended_at is None and row.started_at is None
        campaign = (await session.execute(select(Campaign).where(Campaign.key == "tonight"))).scalar_one()
        assert campaign.live_video_id is None  # a scheduled video does not take the "next live" campaign yet
    await go_live(live_stack)  # the later `live` starts it: the campaign takes it and its comments are read
    streamed = await emulator.live_comment(VIDEO, "3000000000310", "rose+1", to=("stream",))
    await replied_to(live_stack, streamed["comment_id"])
    # Meta's broadcast ends: stopped, then a video; the first ends it.
    for status in ("live_stopped", "vod"):
        assert (await emulator.live_video(PAGE_ID, VIDEO, status=status))["status"] == 200

    async def ended() -> bool:
        async with live_stack.sessions() as session:
            row = await session.get(LiveVideo, VIDEO)
            return row is not None and row.status == "vod"

    await wait_until(ended, what="the video to be a video")
    [row] = await live_stack.rows(select(LiveVideo))
    assert row.started_at is not None and row.ended_at is not None and row.ended_at >= row.started_at
    sent = [d["payload"]["entry"][0]["changes"][0]["value"] for d in await emulator.deliveries("live_video")]
    assert [v["status"] for v in sent] == ["scheduled_unpublished", "scheduled_live", "live", "live_stopped", "vod"]


async def test_an_unknown_or_late_pre_live_status_never_ends_the_broadcast(live_stack: Stack) -> None:
    await go_live(live_stack)
    for status in ("paused_for_ads", "scheduled_live"):  # undocumented; a late retry of the schedule
        await live_stack.emulator.deliver_raw(wf.live_video_delivery(page_id=PAGE_ID, video_id=VIDEO, status=status))
    streamed = await live_stack.emulator.live_comment(VIDEO, "3000000000311", "rose+1", to=("stream",))
    await replied_to(live_stack, streamed["comment_id"])  # still read: the broadcast goes on
    [row] = await live_stack.rows(select(LiveVideo))
    assert (row.status, row.ended_at) == ("live", None)
    assert await open_streams(live_stack) == 1


def shape(value: Any) -> Any:
    """The keys and value types of a JSON value, all the way down: what a sample and an answer share."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


async def test_the_emulator_announces_each_status_as_metas_samples_show(live_stack: Stack) -> None:
    samples = {d["entry"][0]["changes"][0]["value"]["status"]: d for d in status_samples()}
    for n, status in enumerate(DOCUMENTED_PHASES):
        video = f"{VIDEO}{n}"
        reply = await live_stack.emulator.live_video(PAGE_ID, video, status=status.upper())  # as the API spells it
        assert reply["status"] == 200
        assert shape(reply["payload"]) == shape(samples[status])
        assert reply["payload"]["entry"][0]["changes"][0]["value"] == {"id": video, "status": status}


# --- live video ids (issue 18, item 4) --------------------------------------------------------------------


def test_a_stream_comment_gets_the_feed_webhooks_names_once_the_videos_post_is_known() -> None:
    feed = json.loads(load_sample("feed_comment_on_video_post.json"))
    webhook = _event(feed)  # Meta's names: the post `{page}_{post object}`, the comment `{post object}_{own id}`
    value = feed["entry"][0]["changes"][0]["value"]
    page_id, post_id = feed["entry"][0]["id"], value["post_id"]
    own = value["comment_id"].rsplit("_", 1)[1]
    video_id = "1234500000000001"  # the live video's own id, which the stream and the poll put in front
    for raw in (f"{video_id}_{own}", own, f"777_{own}"):  # the stream's name, a bare id, another prefix
        streamed = {"id": raw, "created_time": "2023-12-01T06:52:51+0000", "from": value["from"], "message": "x"}
        delivery = live_comment_delivery(page_id, video_id, streamed, received_s=1701413580, post_id=post_id)
        assert delivery is not None
        live = _event(delivery)
        assert (live.key, live.comment_id, live.post_id, live.parent_id, live.is_reply) == (
            webhook.key,
            webhook.comment_id,
            webhook.post_id,
            webhook.parent_id,
            False,
        )
        assert live.key == "comment:690891113073877_759878495960329:add"


async def test_the_emulator_answers_a_live_videos_fields_as_metas_sample(emulator: GraphEmulator) -> None:
    await emulator.live_video(PAGE_ID, VIDEO, webhook=False)
    sample = json.loads(load_sample("live_video_get_post_id.json"))
    status, body = await get(emulator, VIDEO, fields="id,status,post_id,permalink_url")
    assert status == 200 and shape(body) == shape(sample)
    assert body["id"] == VIDEO and body["status"] == "LIVE"
    # Meta gives the video's post an id of its own: not `{page}_{video}`.
    assert body["post_id"].startswith(f"{PAGE_ID}_") and body["post_id"] != f"{PAGE_ID}_{VIDEO}"
    [listed] = await emulator.live_videos()
    assert listed["post_id"] == body["post_id"]
    status, refused = await get(emulator, VIDEO, fields="id,nope")
    assert status == 400 and refused["error"]["code"] == 100


async def test_one_live_comment_under_both_ids_is_claimed_once_and_all_names_reach_the_campaign(
    live_stack: Stack,
) -> None:
    emulator = live_stack.emulator
    await go_live(live_stack)
    [video] = await emulator.live_videos()
    post_id = video["post_id"]
    assert post_id != f"{PAGE_ID}_{VIDEO}"

    async def learned() -> bool:
        async with live_stack.sessions() as session:
            row = await session.get(LiveVideo, VIDEO)
            return row is not None and row.post_id == post_id

    await wait_until(learned, what="the reader to learn the video's post from Meta")
    asked = [c for c in await emulator.calls(f"/{VIDEO}") if c["method"] == "GET" and c["path"].endswith(f"/{VIDEO}")]
    assert asked and "post_id" in asked[0]["params"]["fields"]

    # One comment, by the feed webhook (`{post object}_{n}` on the post) and by stream and poll (`{video}_{n}`).
    both = await emulator.live_comment(VIDEO, "3000000000320", "rose+2")
    assert both["comment_id"].split("_")[0] == post_id.split("_")[1]
    assert both["video_comment_id"].startswith(f"{VIDEO}_")
    [webhook] = [
        d
        for d in await emulator.deliveries("comment")
        if d["payload"]["entry"][0]["changes"][0]["value"]["comment_id"] == both["comment_id"]
    ]
    assert (
        shape(webhook["payload"]["entry"][0]["changes"][0]["value"]).items()
        <= shape(json.loads(load_sample("feed_comment_on_video_post.json"))["entry"][0]["changes"][0]["value"]).items()
    )

    async def copies_in() -> bool:
        return await polled(live_stack, both["video_comment_id"]) and await comment_duplicates(live_stack) >= 1

    await wait_until(copies_in, what="the webhook's copy and the reader's")
    await replied_to(live_stack, both["comment_id"])
    # Each name alone: the feed webhook only, the stream and the poll only, and a feed comment whose id
    # carries another prefix (the video's), all on the video's post.
    feed_only = await emulator.live_comment(VIDEO, "3000000000321", "rose+1", to=("webhook",))
    read_only = await emulator.live_comment(VIDEO, "3000000000322", "rose+1", to=("stream", "comments"))
    other = await emulator.deliver_comment(PAGE_ID, post_id, "3000000000323", "rose+1", comment_id=f"{VIDEO}_5550323")
    assert other["status"] == 200
    for comment_id in (feed_only["comment_id"], read_only["comment_id"], f"{VIDEO}_5550323"):
        await replied_to(live_stack, comment_id)
    [campaign_id] = await live_stack.rows(select(Campaign.id).where(Campaign.key == "tonight"))
    async with live_stack.sessions() as session:
        claims = (await session.execute(select(StockClaim.comment_id, StockClaim.campaign_id, StockClaim.qty))).all()
    assert sorted(tuple(c) for c in claims) == sorted(
        [
            (both["comment_id"], campaign_id, 2),
            (feed_only["comment_id"], campaign_id, 1),
            (read_only["comment_id"], campaign_id, 1),
            (f"{VIDEO}_5550323", campaign_id, 1),
        ]
    )
    assert len(await private_replies(live_stack, both["comment_id"])) == 1
    assert await private_replies(live_stack, both["video_comment_id"]) == []
    assert await count(live_stack, select(func.count()).where(CommentLog.comment_id == both["comment_id"])) == 1
    # The live board counts the comments on the video's post as Meta names it.
    async with live_stack.sessions() as session:
        board = await fetch_board(session, frozenset({PAGE_ID}), "tonight")
    assert board is not None and board.comments_total == 4


# --- the polling backstop's `live_filter` (issue 18, item 6) ----------------------------------------------


async def test_the_poll_asks_for_every_comment_and_gets_every_a_plus_1(live_stack: Stack) -> None:
    emulator = live_stack.emulator
    await emulator.live_video(PAGE_ID, "8880002", webhook=False)  # no campaign: nothing reads it by itself
    messages = ["A+1", "+1", "B+1 L", "👍👍", "rose+1 please"]
    for i, message in enumerate(messages):
        await emulator.live_comment("8880002", f"30000000005{i}", message, to=("comments",))
    settings = live_stack.settings
    graph = GraphClient(
        base_url=settings.graph_url, version=settings.graph_version, app_secret=APP_SECRET, page_tokens={PAGE_ID: TOKEN}
    )
    redis = live_stack.client.app[REDIS]
    keys = RedisKeys(settings.key_prefix + "y")
    ingest = IngestStream(redis, keys)  # a stream no worker reads
    try:
        # Meta filters low-quality comments unless asked not to: a poll without `no_filter` loses the short ones.
        default = await graph.fetch_comments(PAGE_ID, "8880002", filter="stream")
        assert [c["message"] for c in default["data"]] == ["rose+1 please"]
        reader = LiveCommentReader(ActiveVideo("8880002", PAGE_ID), graph, ingest, redis, keys, LiveReaderSettings())
        assert await reader.poll_once() == len(messages)
    finally:
        graph.close()
    [call] = [c for c in await emulator.calls("8880002/comments") if c["params"].get("live_filter")]
    assert call["params"]["live_filter"] == "no_filter"
    appended = [json.loads(fields[b"body"]) for _, fields in await redis.xrange(keys.ingest_stream)]
    assert sorted(d["entry"][0]["changes"][0]["value"]["message"] for d in appended) == sorted(messages)


async def test_a_reader_that_learns_the_post_mid_broadcast_does_not_append_a_comment_again(live_stack: Stack) -> None:
    emulator = live_stack.emulator
    await emulator.live_video(PAGE_ID, "8880003", webhook=False)  # no campaign: nothing reads it by itself
    [video] = [v for v in await emulator.live_videos() if v["id"] == "8880003"]
    posted = await emulator.live_comment("8880003", "300000000060", "rose+1", to=("comments",))
    settings = live_stack.settings
    graph = GraphClient(
        base_url=settings.graph_url, version=settings.graph_version, app_secret=APP_SECRET, page_tokens={PAGE_ID: TOKEN}
    )
    redis = live_stack.client.app[REDIS]
    keys = RedisKeys(settings.key_prefix + "z")
    reader = LiveCommentReader(
        ActiveVideo("8880003", PAGE_ID), graph, IngestStream(redis, keys), redis, keys, LiveReaderSettings()
    )
    try:
        assert await reader.poll_once() == 1  # named after the video: Meta had not said which post it is
        reader.video = ActiveVideo("8880003", PAGE_ID, video["post_id"])  # then it did
        second = await emulator.live_comment("8880003", "300000000061", "rose+2", to=("comments",))
        assert await reader.poll_once() == 1  # the first comment, read again in the overlap, is not appended again
    finally:
        graph.close()
    appended = [json.loads(fields[b"body"]) for _, fields in await redis.xrange(keys.ingest_stream)]
    names = [d["entry"][0]["changes"][0]["value"]["comment_id"] for d in appended]
    assert names == [posted["video_comment_id"], second["comment_id"]]
